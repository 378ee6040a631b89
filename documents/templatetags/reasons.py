"""``{{ document.failure_reason|reason }}``: a stored (English) failure reason in the page's
language (see ``documents.reasons``)."""

from __future__ import annotations

from django import template

from documents.reasons import translate_reason

register = template.Library()


@register.filter(name="reason")
def reason(value: str) -> str:
    return translate_reason(value or "")
