"""The Russian translation is complete, compiled, and the .mo in the repository matches the .po
(so the build needs no msgfmt)."""

from __future__ import annotations

import ast
import gettext
import re
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import translation
from django.utils.translation.template import templatize

from web.strings import js_strings
from web.tests.pofile import Entry, read_po

LOCALE = Path(settings.BASE_DIR) / "locale" / "ru" / "LC_MESSAGES"
TEMPLATES = Path(settings.BASE_DIR) / "templates"
_CALL = re.compile(r"\b(n?p?gettext)\(((?:u'(?:[^'\\]|\\.)*'(?:, )?)+)")
_LITERAL = re.compile(r"u'(?:[^'\\]|\\.)*'")


def _entries() -> list[Entry]:
    return [e for e in read_po(LOCALE / "django.po") if e.msgid]


def _template_messages() -> set[tuple[str | None, str]]:
    """(context, msgid) of every translatable string in our templates."""
    found: set[tuple[str | None, str]] = set()
    for path in TEMPLATES.rglob("*.html"):
        code = templatize(path.read_text(encoding="utf-8"), str(path))
        for function, args in _CALL.findall(code):
            strings = [ast.literal_eval(s) for s in _LITERAL.findall(args)]
            context = strings.pop(0) if function.startswith(("pgettext", "npgettext")) else None
            found.add((context, strings[0]))
    return found


def test_every_message_has_a_russian_translation():
    untranslated = [
        e.msgid
        for e in _entries()
        if "fuzzy" in e.flags or not e.msgstr or not all(e.msgstr.values())
    ]
    assert untranslated == []


def test_plural_messages_have_all_four_russian_forms():
    for entry in _entries():
        if entry.msgid_plural:
            assert sorted(entry.msgstr) == [0, 1, 2, 3], entry.msgid


def test_compiled_mo_matches_the_po():
    with (LOCALE / "django.mo").open("rb") as handle:
        catalog = gettext.GNUTranslations(handle)._catalog  # type: ignore[attr-defined]
    for entry in _entries():
        if entry.msgid_plural:
            for index, text in entry.msgstr.items():
                assert catalog[(entry.key, index)] == text, entry.msgid
        else:
            assert catalog[entry.key] == entry.msgstr[0], entry.msgid
    assert len([k for k in catalog if k]) >= len(_entries())


def test_every_template_string_is_in_the_translation():
    known = {(e.msgctxt, e.msgid) for e in _entries()}
    missing = sorted(m[1] for m in _template_messages() - known)
    assert missing == [], "run makemessages -l ru and translate: " + ", ".join(missing)


def test_every_javascript_string_is_translated():
    with translation.override("en"):
        english = js_strings()
    with translation.override("ru"):
        russian = js_strings()
    same = [key for key in english if english[key] == russian[key]]
    assert same == []


@pytest.mark.django_db
def test_the_browser_language_picks_russian(alice_client):
    html = alice_client.get("/kb/", HTTP_ACCEPT_LANGUAGE="ru").content.decode()
    assert '<html lang="ru"' in html
    assert "Базы знаний" in html
    assert "Новая база знаний" in html


@pytest.mark.django_db
def test_the_language_switcher_sets_the_language(alice_client):
    response = alice_client.post("/i18n/setlang/", {"language": "ru", "next": "/kb/"})
    assert response.status_code == 302
    html = alice_client.get("/kb/").content.decode()
    assert "Новая база знаний" in html
