"""The house keeps its shape (issue 15, point 7; docs/ARCHITECTURE.md): read from the production
code with plain ``ast`` (no Django), with import-linter's contracts (``make lint``) beside it.

- no module over :data:`MAX_LINES` lines;
- the public functions of ``services`` and ``selectors`` (modules and packages) take keyword-only
  arguments (HackSoftware's styleguide, ``../shared/STYLE.md``);
- no module imports another app of ours inside a function body (an app circle kept importable
  that way is still a circle);
- no circle of files among module-level imports.

Production code is every module of the packages import-linter knows (``root_packages`` in
``pyproject.toml``) outside ``tests/`` and ``migrations/``. Each allow-list below says why."""

from __future__ import annotations

import ast
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MAX_LINES = 500

#: Modules over MAX_LINES, known and about to be split (none today). Delete an entry once it is.
KNOWN_LONG: dict[str, str] = {}

#: Public service/selector functions that keep a positional parameter, with the reason. Empty:
#: a function passed as a callback with a fixed signature would be the reason to add one.
POSITIONAL_OK: dict[str, str] = {}

#: Imports of another app inside a function body, ``"module -> imported"``, with the reason.
#: Empty: the heavy encoder libraries load lazily, but they are not our apps.
BODY_IMPORTS_OK: dict[str, str] = {}


@dataclass(frozen=True)
class Module:
    name: str  # dotted: "chat.services._answers"; a package is its __init__'s name
    path: Path
    tree: ast.Module
    lines: int

    @property
    def app(self) -> str:
        return self.name.split(".")[0]

    @property
    def rel(self) -> str:
        return self.path.relative_to(ROOT).as_posix()


def apps() -> list[str]:
    with (ROOT / "pyproject.toml").open("rb") as f:
        return list(tomllib.load(f)["tool"]["importlinter"]["root_packages"])


@cache
def modules() -> dict[str, Module]:
    found = {}
    for app in apps():
        for path in sorted((ROOT / app).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            if "tests" in parts or "migrations" in parts:
                continue
            if parts[-1] == "__init__":
                parts = parts[:-1]
            source = path.read_text()
            name = ".".join(parts)
            found[name] = Module(name, path, ast.parse(source), source.count("\n"))
    return found


def imported(module: Module, node: ast.stmt) -> list[str]:
    """The modules that an import statement names. ``from pkg import sub`` names ``pkg.sub``
    when that is one of our modules, else ``pkg``."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if not isinstance(node, ast.ImportFrom):
        return []
    if node.level:
        base = module.name.split(".")
        if module.path.name != "__init__.py":
            base = base[:-1]  # a module's level 1 is its package
        base = base[: len(base) - (node.level - 1)]
        source = ".".join([*base, node.module] if node.module else base)
    else:
        source = node.module or ""
    known = modules()
    subs = [f"{source}.{alias.name}" for alias in node.names]
    ours = [sub for sub in subs if sub in known]
    return ours if len(ours) == len(subs) else [source, *ours]


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def module_level_imports(module: Module) -> Iterator[ast.stmt]:
    """Import statements run when the module is imported: at the top, or in a top-level
    ``if``/``try`` (``if TYPE_CHECKING:`` blocks excepted)."""
    pending: list[ast.stmt] = list(module.tree.body)
    while pending:
        node = pending.pop(0)
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        elif isinstance(node, ast.If) and not _is_type_checking(node):
            pending += node.body + node.orelse
        elif isinstance(node, ast.Try):
            pending += node.body + node.orelse + node.finalbody
            for handler in node.handlers:
                pending += handler.body


def body_imports(module: Module) -> Iterator[tuple[str, str]]:
    """``(module, imported)`` for every import of one of our modules inside a function body."""
    ours = set(apps())

    def visit(node: ast.AST, in_function: bool) -> Iterator[tuple[str, str]]:
        for child in ast.iter_child_nodes(node):
            if in_function and isinstance(child, ast.Import | ast.ImportFrom):
                for target in imported(module, child):
                    if target.split(".")[0] in ours:
                        yield module.name, target
            inner = in_function or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
            yield from visit(child, inner)

    yield from visit(module.tree, False)


def is_service_or_selector(module: Module) -> bool:
    return bool({"services", "selectors"} & set(module.name.split(".")))


def positional_parameters(function: ast.FunctionDef | ast.AsyncFunctionDef) -> list[str]:
    args = function.args
    return [arg.arg for arg in args.posonlyargs + args.args] + (
        [f"*{args.vararg.arg}"] if args.vararg else []
    )


def file_circles() -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    known = modules()
    edges = {
        name: sorted(
            {
                target
                for node in module_level_imports(module)
                for target in imported(module, node)
                if target in known and target != name
            }
        )
        for name, module in known.items()
    }
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles: list[list[str]] = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges[v]:
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for name in edges:
        if name not in index:
            connect(name)
    return circles


# --- the rules ----------------------------------------------------------------------------------


def test_the_walk_sees_the_production_code() -> None:
    known = modules()
    assert {"chat.selectors", "documents.services", "accounts.services"} <= set(known)
    assert not any(".tests" in name or ".migrations" in name for name in known)
    # The edges the circle check follows are there: `from pkg import sub` counts as pkg.sub.
    ingestion = known["documents.ingestion"]
    targets = {t for node in module_level_imports(ingestion) for t in imported(ingestion, node)}
    assert {"documents.attempt", "documents.models"} <= targets


def test_no_module_is_too_long() -> None:
    too_long = {
        module.rel: module.lines
        for module in modules().values()
        if module.lines > MAX_LINES and module.rel not in KNOWN_LONG
    }
    assert too_long == {}, f"split these modules along a seam (at most {MAX_LINES} lines)"
    sizes = {module.rel: module.lines for module in modules().values()}
    no_longer_long = {rel for rel in KNOWN_LONG if sizes.get(rel, 0) <= MAX_LINES}
    assert no_longer_long == set(), "delete these entries from KNOWN_LONG"


def test_services_and_selectors_take_keyword_only_arguments() -> None:
    positional = {}
    for module in modules().values():
        if not is_service_or_selector(module):
            continue
        for node in module.tree.body:
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            key = f"{module.name}.{node.name}"
            if node.name.startswith("_") or key in POSITIONAL_OK:
                continue
            if params := positional_parameters(node):
                positional[key] = params
    assert positional == {}, "make them keyword-only: def f(*, user, ...)"


def test_no_app_imports_another_inside_a_function() -> None:
    across = sorted(
        f"{name} -> {target}"
        for module in modules().values()
        for name, target in body_imports(module)
        if target.split(".")[0] != module.app
    )
    assert [line for line in across if line not in BODY_IMPORTS_OK] == []


def test_no_circle_of_files() -> None:
    assert file_circles() == []
