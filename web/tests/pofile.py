"""A small reader of gettext ``.po`` files (what makemessages writes), so that the tests need
neither msgfmt nor a third-party library."""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Entry:
    msgid: str = ""
    msgid_plural: str = ""
    msgctxt: str | None = None
    msgstr: dict[int, str] = field(default_factory=dict)
    flags: set[str] = field(default_factory=set)

    @property
    def key(self) -> str:
        """The key gettext stores in a .mo: context, EOT, id (the singular id for plurals)."""
        return self.msgid if self.msgctxt is None else f"{self.msgctxt}\x04{self.msgid}"


def read_po(path: Path) -> list[Entry]:
    """The entries of ``path`` (the header entry with an empty msgid included)."""
    entries: list[Entry] = []
    entry = Entry()
    current: tuple[str, int] | None = None
    for raw in [*path.read_text(encoding="utf-8").splitlines(), ""]:
        line = raw.strip()
        if not line:
            if current is not None:
                entries.append(entry)
            entry, current = Entry(), None
        elif line.startswith("#,"):
            entry.flags.update(f.strip() for f in line[2:].split(","))
        elif line.startswith("#"):
            continue
        elif line.startswith('"'):
            _append(entry, current, ast.literal_eval(line))
        else:
            keyword, _, value = line.partition(" ")
            current = _field(keyword)
            _append(entry, current, ast.literal_eval(value))
    return entries


def _field(keyword: str) -> tuple[str, int]:
    if keyword.startswith("msgstr["):
        return "msgstr", int(keyword[7:-1])
    return keyword, 0


def _append(entry: Entry, current: tuple[str, int] | None, text: str) -> None:
    assert current is not None, "a string outside an entry"
    name, index = current
    if name == "msgstr":
        entry.msgstr[index] = entry.msgstr.get(index, "") + text
    elif name == "msgctxt":
        entry.msgctxt = (entry.msgctxt or "") + text
    else:
        setattr(entry, name, getattr(entry, name) + text)
