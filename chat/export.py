"""A conversation exported with its context: every answer with its sources (document, page,
quoted passage), as Markdown, JSON or PDF, headed in the language of the request.

The PDF is written by fpdf2 (pure Python) in PT Sans, a font made for Russian and Latin text that
comes from PyPI (``fontpkg-pt-sans``), so nothing is needed from the system at run time."""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Container
from functools import cache
from pathlib import Path
from typing import Any

import fontpkg  # type: ignore[import-untyped]
from django.utils import timezone
from django.utils.translation import gettext as _
from fpdf import FPDF
from fpdf.enums import XPos, YPos
from fpdf.fonts import TTFFont

from chat.models import Conversation, Message
from chat.selectors import message_list_for_conversation


def _citation_dict(message: Message) -> list[dict[str, Any]]:
    return [
        {
            "number": c.number,
            "document_id": c.document_id,
            "document_title": c.document_title,
            "file_name": c.file_name,
            "page": c.page,
            "score": c.score,
            "quote": c.quote,
        }
        for c in message.citations.all()
    ]


def conversation_export_json(conversation: Conversation) -> dict[str, Any]:
    """The conversation, its settings and every message with its citations, as plain data."""
    messages = message_list_for_conversation(conversation=conversation)
    return {
        "id": conversation.pk,
        "title": conversation.title,
        "provider": conversation.provider,
        "model": conversation.model,
        "params": conversation.params,
        "system_prompt": conversation.system_prompt,
        "knowledge_bases": [kb.name for kb in conversation.knowledge_bases.all()],
        "created_at": conversation.created_at.isoformat(),
        "updated_at": conversation.updated_at.isoformat(),
        "messages": [
            {
                "role": m.role,
                "content": m.content,
                "status": m.status,
                "error": m.error,
                "provider": m.provider,
                "model": m.model,
                "params": m.params,
                "prompt_tokens": m.prompt_tokens,
                "completion_tokens": m.completion_tokens,
                "first_token_ms": m.first_token_ms,
                "total_ms": m.total_ms,
                "created_at": m.created_at.isoformat(),
                "citations": _citation_dict(m),
            }
            for m in messages
        ],
    }


def _status_note(message: Message) -> str:
    """Why a stopped or failed answer is partial, for the reader of an export."""
    note = _("The answer was stopped") if message.status == "stopped" else _("The answer failed")
    return f"{note}: {message.error}" if message.error else note


def _quote(text: str) -> str:
    return "\n".join(f"> {line}" if line else ">" for line in text.strip().splitlines())


def _markdown_message(message: Message) -> list[str]:
    who = _("Question") if message.role == "user" else _("Answer")
    lines = [f"## {who}", ""]
    if message.role == "assistant":
        made_by = " · ".join(filter(None, [message.provider, message.model]))
        if made_by:
            lines += [f"*{made_by}*", ""]
    lines += [message.content.strip() or "*(empty)*", ""]
    if message.status in ("stopped", "failed"):
        lines += [f"*{_status_note(message)}*", ""]
    citations = list(message.citations.all())
    if citations:
        lines += [f"### {_('Sources')}", ""]
        for c in citations:
            page = ", " + _("p. %(page)s") % {"page": c.page} if c.page is not None else ""
            lines += [f"**[{c.number}] {c.document_title}{page}**", "", _quote(c.quote), ""]
    return lines


def conversation_export_markdown(conversation: Conversation) -> str:
    """The conversation as a Markdown document: questions, answers, and under each answer the
    sources it cited with their quoted passages."""
    lines = [f"# {conversation.title or _('Conversation')}", ""]
    kbs = ", ".join(kb.name for kb in conversation.knowledge_bases.all())
    if kbs:
        lines += [_("Knowledge bases: %(names)s") % {"names": kbs}, ""]
    for message in message_list_for_conversation(conversation=conversation):
        lines += _markdown_message(message)
    return "\n".join(lines).rstrip() + "\n"


# --- PDF -----------------------------------------------------------------------------------

PDF_FONT_FAMILY = "PT Sans"
_FONT = "ptsans"
_GREY = (100, 100, 100)
_BLACK = (0, 0, 0)
# fontTools logs every step of subsetting the font at INFO.
logging.getLogger("fontTools").setLevel(logging.WARNING)
# Characters a PDF line cannot show: controls (tabs become spaces, newlines stay).
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


@cache
def _font_files() -> dict[str, Path]:
    """fpdf2 style -> the PT Sans file of that style, as installed by ``fontpkg-pt-sans``."""
    return {
        "": fontpkg.path(PDF_FONT_FAMILY),
        "B": fontpkg.path(PDF_FONT_FAMILY, weight=700),
        "I": fontpkg.path(PDF_FONT_FAMILY, style="italic"),
    }


def _printable(text: str, glyphs: Container[int]) -> str:
    """``text`` as a font with ``glyphs`` (code points) can draw it: tabs as spaces, other
    control characters removed, and characters outside the font (emoji, CJK...) replaced by
    their compatibility form when the font has it, else by ``?``, rather than silently dropped."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\t", "    ")
    out: list[str] = []
    for char in _CONTROL.sub("", text):
        if char == "\n" or ord(char) in glyphs:
            out.append(char)
            continue
        plain = unicodedata.normalize("NFKD", char)
        out.append(plain if plain and all(ord(c) in glyphs for c in plain) else "?")
    return "".join(out)


class _Document(FPDF):
    def __init__(self, title: str) -> None:
        super().__init__(format="A4")
        for style, path in _font_files().items():
            self.add_font(_FONT, style, path)
        self.set_title(title)
        self.set_creator("RAGGEN")
        self.set_auto_page_break(auto=True, margin=18)
        self.set_margins(18, 18, 18)

    def footer(self) -> None:
        self.set_y(-12)
        self.set_font(_FONT, "", 8)
        self.set_text_color(*_GREY)
        self.cell(0, 5, str(self.page_no()), align="C")

    def text_block(
        self,
        text: str,
        *,
        size: float = 10.5,
        style: str = "",
        colour: tuple[int, int, int] = _BLACK,
        indent: float = 0,
        gap: float = 1.5,
    ) -> None:
        """A paragraph of plain text, wrapped, left-aligned (justified text comes back from a
        PDF reader with its spaces spread out)."""
        self.set_font(_FONT, style, size)
        self.set_text_color(*colour)
        font = self.fonts[f"{_FONT}{style}"]
        glyphs = font.cmap if isinstance(font, TTFFont) else {}
        self.set_x(self.l_margin + indent)
        self.multi_cell(
            self.epw - indent,
            size * 0.5,
            _printable(text, glyphs),
            align="L",
            new_x=XPos.LMARGIN,
            new_y=YPos.NEXT,
        )
        self.ln(gap)


def _pdf_message(pdf: _Document, message: Message) -> None:
    if message.role == "user":
        pdf.text_block(_("Question"), size=12, style="B", gap=0.5)
        pdf.text_block(message.content.strip() or "—", gap=4)
        return
    pdf.text_block(_("Answer"), size=12, style="B", gap=0.5)
    made_by = " · ".join(filter(None, [message.provider, message.model]))
    if made_by:
        pdf.text_block(made_by, size=8.5, colour=_GREY, gap=0.5)
    pdf.text_block(message.content.strip() or "—")
    if message.status in ("stopped", "failed"):
        pdf.text_block(
            _status_note(message),
            size=9,
            style="I",
            colour=_GREY,
        )
    citations = list(message.citations.all())
    if citations:
        pdf.text_block(_("Sources"), size=10.5, style="B", gap=0.5)
        for c in citations:
            head = f"[{c.number}] {c.document_title}"
            if c.page is not None:
                head += ", " + _("p. %(page)s") % {"page": c.page}
            pdf.text_block(head, size=9.5, style="B", indent=3, gap=0.3)
            if c.file_name and c.file_name != c.document_title:
                pdf.text_block(c.file_name, size=8, colour=_GREY, indent=3, gap=0.3)
            pdf.text_block(c.quote.strip(), size=9, style="I", colour=_GREY, indent=6, gap=2)
    pdf.ln(3)


def conversation_export_pdf(conversation: Conversation) -> bytes:
    """The conversation as a PDF: questions, answers, and under each answer the sources it
    cited (document, page, quoted passage). Russian and Latin text are drawn in PT Sans."""
    title = conversation.title or _("Conversation")
    pdf = _Document(title)
    pdf.add_page()
    pdf.text_block(title, size=16, style="B", gap=1)
    kbs = ", ".join(kb.name for kb in conversation.knowledge_bases.all())
    meta = [_("Exported %(date)s") % {"date": timezone.localtime().strftime("%Y-%m-%d %H:%M")}]
    if kbs:
        meta.insert(0, _("Knowledge bases: %(names)s") % {"names": kbs})
    pdf.text_block(" · ".join(meta), size=9, colour=_GREY, gap=5)
    for message in message_list_for_conversation(conversation=conversation):
        _pdf_message(pdf, message)
    return bytes(pdf.output())
