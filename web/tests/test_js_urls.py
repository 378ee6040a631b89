"""The JavaScript reads every URL from the one map the server renders (web/js_urls.py), each page
has one module of its own, and the shared helpers (CSRF token, fetch with errors, uploads, the
confirmation dialog) and the export links exist once."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, resolve, set_script_prefix
from django.urls.resolvers import RegexPattern

from chat.routing import websocket_urlpatterns as chat_sockets
from documents.routing import websocket_urlpatterns as documents_sockets
from web import js_urls as js_urls_module
from web.js_urls import js_urls

ROOT = Path(__file__).resolve().parents[2]
JS = ROOT / "static" / "js"
TEMPLATES = ROOT / "templates"
PAGES = {
    "web/chat.html": "chat.js",
    "web/kb_list.html": "kb_list.js",
    "web/kb_detail.html": "kb_detail.js",
}
SHARED = {"ui.js", "markdown.js", "theme.js"}

# A "/" may start a regular expression literal after these (or at the start, or after return).
_REGEX_BEFORE = set("(,=:[!&|?{};+-*%<>~^")


def _string_literals(source: str) -> list[str]:
    """The string literals of a JavaScript source (comments and regular expressions skipped)."""
    found: list[str] = []
    i, n, last = 0, len(source), ""
    while i < n:
        c = source[i]
        if source.startswith("//", i):
            i = source.find("\n", i)
            i = n if i < 0 else i
        elif source.startswith("/*", i):
            i = source.index("*/", i) + 2
        elif c in "\"'`":
            j, text = i + 1, []
            while source[j] != c:
                if source[j] == "\\":
                    j += 1
                text.append(source[j])
                j += 1
            found.append("".join(text))
            i, last = j + 1, c
        elif c == "/" and (
            last in _REGEX_BEFORE or last == "" or source[:i].rstrip().endswith("return")
        ):
            j, in_class = i + 1, False
            while in_class or source[j] != "/":
                if source[j] == "\\":
                    j += 1
                elif source[j] == "[":
                    in_class = True
                elif source[j] == "]":
                    in_class = False
                j += 1
            i, last = j + 1, "/"
        else:
            if not c.isspace():
                last = c
            i += 1
    return found


def _first_segments() -> set[str]:
    """The first path segment of every route of the site and its websockets ("api", "kb", ...)."""
    segments: set[str] = set()

    def walk(patterns: list[URLPattern | URLResolver], prefix: str) -> None:
        for pattern in patterns:
            route = prefix + str(pattern.pattern).lstrip("^").replace("\\", "")
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns, route)
            segments.add(re.split(r"[/<(?$]", route, maxsplit=1)[0])

    walk(get_resolver().url_patterns, "")
    walk([*chat_sockets, *documents_sockets], "")
    segments.discard("")
    return segments


def _sources() -> dict[str, str]:
    return {path.name: path.read_text(encoding="utf-8") for path in sorted(JS.glob("*.js"))}


def test_the_tokenizer_finds_string_literals_and_skips_regexes_and_comments():
    source = (
        'var a = "/kb/" + b; // "/api/x"\n'
        'var r = /"\\/api\\/"/g; /* "/ws/" */ f(\'it\\\'s\', `/c/`);'
    )
    assert _string_literals(source) == ["/kb/", "it's", "/c/"]


def test_no_url_is_written_in_the_javascript():
    """A string literal that starts with one of the site's first path segments is a URL written
    by hand. ("/" alone is not checked: the chat uses it as the prompt-templates key.)"""
    segments = _first_segments()
    assert {"api", "ws", "kb", "c", "documents", "accounts", "admin"} <= segments
    written = [
        f"{name}: {literal!r}"
        for name, source in _sources().items()
        for literal in _string_literals(source)
        if literal.startswith("/") and re.split(r"[/?#]", literal[1:], maxsplit=1)[0] in segments
    ]
    assert written == []


def test_every_url_the_javascript_reads_is_in_the_map_and_every_entry_is_read():
    urls = js_urls()
    used: set[str] = set()
    for name, source in _sources().items():
        calls = re.findall(r"(?<![\w.])(?:R\.)?url\(\s*([^,)]*)", source)
        calls = [c for c in calls if not re.match(r"key\b", c)]  # ui.js: function url(key, ...)
        for argument in calls:
            assert re.fullmatch(r'"[\w.]+"', argument), f"{name}: url({argument}) is not a name"
            used.add(argument.strip('"'))
    assert used, "the JavaScript reads no URL from the map"
    assert sorted(used - urls.keys()) == []
    assert sorted(urls.keys() - used) == []


@pytest.mark.parametrize("key", sorted(js_urls_module._HTTP))
def test_each_page_and_api_url_resolves_to_its_view(key):
    name, params = js_urls_module._HTTP[key]
    url = js_urls()[key]
    assert re.findall(r"\{(\w+)\}", url) == list(params)
    match = resolve(re.sub(r"\{\w+\}", "7", url))
    assert match.view_name == name
    assert all(str(match.kwargs[param]) == "7" for param in params)


@pytest.mark.parametrize("key", sorted(js_urls_module._WEBSOCKETS))
def test_each_websocket_url_resolves_to_its_consumer(key):
    name, params = js_urls_module._WEBSOCKETS[key]
    url = js_urls()[key]
    sockets = URLResolver(RegexPattern(r"^/"), [*chat_sockets, *documents_sockets])
    match = sockets.resolve(re.sub(r"\{\w+\}", "7", url))
    assert match.url_name == name
    assert all(match.kwargs[param] == 7 for param in params)


def test_the_map_follows_the_script_prefix():
    set_script_prefix("/raggen/")
    try:
        moved = js_urls()
    finally:
        set_script_prefix("/")
    assert moved["api.knowledgeBase"] == "/raggen/api/v1/knowledge-bases/{kb_id}"
    assert moved["ws.chat"] == "/raggen/ws/chat/{conversation_id}/"
    assert js_urls()["ws.chat"] == "/ws/chat/{conversation_id}/"


def test_each_page_loads_one_module_of_its_own():
    loaded = {}
    for template, module in PAGES.items():
        html = (TEMPLATES / template).read_text(encoding="utf-8")
        scripts = set(re.findall(r"\{% static 'js/([\w.]+)' %\}", html))
        assert scripts - SHARED == {module}, template
        loaded[template] = module
    assert {p.name for p in JS.glob("*.js")} == SHARED | set(loaded.values())


def _files_with(text: str) -> list[str]:
    files = [*JS.glob("*.js"), *TEMPLATES.rglob("*.html")]
    return sorted(str(f.relative_to(ROOT)) for f in files if text in f.read_text(encoding="utf-8"))


def test_the_shared_helpers_and_the_export_links_are_written_once():
    assert _files_with("csrftoken") == ["static/js/ui.js"]
    assert (JS / "ui.js").read_text(encoding="utf-8").count("csrftoken") == 1
    assert _files_with("fetch(") == ["static/js/ui.js"]
    assert _files_with("XMLHttpRequest") == ["static/js/ui.js"]
    assert _files_with('"confirm-dialog"') == [
        "static/js/ui.js",
        "templates/web/_confirm_dialog.html",
    ]
    assert _files_with("export-markdown") == ["templates/web/chat.html"]
    assert _files_with("export?") == []
