"""Every string of the accounts templates is in the Russian catalogue (web's tests check that the
whole catalogue is translated and that the compiled .mo matches the .po)."""

from __future__ import annotations

import ast
from pathlib import Path

from django.conf import settings
from django.utils.translation.template import templatize

from web.tests.pofile import read_po
from web.tests.test_translations import _CALL, _LITERAL

TEMPLATES = Path(__file__).resolve().parents[1] / "templates"
PO = Path(settings.BASE_DIR) / "locale" / "ru" / "LC_MESSAGES" / "django.po"


def test_every_accounts_template_string_is_translated():
    known = {e.msgid for e in read_po(PO) if e.msgid and all(e.msgstr.values())}
    missing = set()
    for path in TEMPLATES.rglob("*.html"):
        code = templatize(path.read_text(encoding="utf-8"), str(path))
        for _function, args in _CALL.findall(code):
            msgid = ast.literal_eval(_LITERAL.findall(args)[0])
            if msgid not in known:
                missing.add(msgid)
    assert missing == set()
