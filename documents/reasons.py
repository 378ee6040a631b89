"""Failure reasons in the reader's language.

Ingestion runs in the background, where there is no user and so no language: a document's
``failure_reason`` is stored in English (the msgid). It is translated when it is shown (pages,
API, progress websocket) by :func:`translate_reason`: a reason that is a whole msgid is looked
up as is; one built from a template with parameters is matched against :data:`TEMPLATES` and
rebuilt from the translated template, its parameters translated in turn when they are msgids
themselves (a provider's message inside "tried 3 times"). Anything else (a provider's own
words, an exception text) stays as stored.
"""

from __future__ import annotations

import re
from functools import cache

from django.utils.translation import gettext, gettext_noop

#: Reason templates with parameters, exactly as the code that writes them formats them.
TEMPLATES: tuple[str, ...] = (
    gettext_noop("%(message)s (tried %(count)s times; retry later)"),
    gettext_noop("Indexing failed %(count)s times (%(error)s). Try again later."),
    gettext_noop("This file is %(name)s, which we cannot read. %(supported)s"),
    gettext_noop("This file is a zip archive, not a Word document. %(supported)s"),
    gettext_noop("This PDF has more than %(pages)s pages, the most we accept; split it."),
    gettext_noop("%(name)s is larger than the %(limit)s MB limit."),
    # Reading limits (documents.ingestion).
    gettext_noop(
        "This file took longer than %(count)s minutes to read; it may be damaged or built to "
        "overload readers, so it was not indexed."
    ),
    gettext_noop(
        "This file took longer than %(count)s seconds to read; it may be damaged or built to "
        "overload readers, so it was not indexed."
    ),
    gettext_noop(
        "This file needed more than %(limit)s MB of memory to read; it may be damaged or built "
        "to overload readers, so it was not indexed. If it is a genuine document, split it into "
        "smaller files."
    ),
    gettext_noop(
        "%(label)s embeddings refused a passage as too long for the model (%(message)s). "
        "Lower the maximum chunk size of this knowledge base."
    ),
    gettext_noop("%(label)s embeddings failed: %(message)s"),
    # The file store (documents.stored_files).
    gettext_noop(
        "Fetching the original file from the file store took longer than %(count)s seconds; "
        "try again later."
    ),
    # Provider errors (providers._http), inside the embeddings failures above.
    gettext_noop("%(label)s said: %(detail)s (HTTP %(status)s)"),
    gettext_noop("%(label)s rejected the credentials: %(detail)s (HTTP %(status)s)."),
    gettext_noop("%(label)s is rate limiting requests: %(detail)s. %(wait)s"),
    gettext_noop("Try again in %(seconds)s s."),
    gettext_noop(
        "%(label)s does not know this model or it is not available: %(detail)s (HTTP %(status)s)."
    ),
    gettext_noop("%(label)s refused: the account has no tokens left (%(detail)s, HTTP 402)."),
    gettext_noop("%(label)s rejected the request: %(said)s."),
    gettext_noop(
        "%(label)s is unavailable right now: %(detail)s (HTTP %(status)s). Try again later."
    ),
    gettext_noop("%(label)s did not accept a connection in time."),
    gettext_noop("%(label)s took too long: timed out waiting for the answer to start."),
    gettext_noop("Cannot connect to %(label)s: %(error)s."),
    gettext_noop("%(label)s failed: %(error)s"),
)

_PLACEHOLDER = re.compile(r"%\((\w+)\)s")


@cache
def _pattern(template: str) -> re.Pattern[str]:
    parts: list[str] = []
    position = 0
    for match in _PLACEHOLDER.finditer(template):
        parts.append(re.escape(template[position : match.start()]))
        parts.append(f"(?P<{match.group(1)}>.+?)")
        position = match.end()
    parts.append(re.escape(template[position:]))
    return re.compile("".join(parts), re.S)


def translate_reason(reason: str) -> str:
    """``reason`` (English, as stored) in the active language, as far as it is known."""
    if not reason:
        return reason
    translated = gettext(reason)
    if translated != reason:
        return translated
    for template in TEMPLATES:
        match = _pattern(template).fullmatch(reason)
        if match is not None:
            values = {key: translate_reason(value) for key, value in match.groupdict().items()}
            return gettext(template) % values
    return reason
