"""The grounding check of a finished answer, run once its message is saved (chat.grounding):
which sentences no passage given to the model supports, stored on the message (the report the
chat shows) and its share on the usage record (what the analytics count).

The check is the stemmed word overlap and exact facts only, without the knowledge base's
encoder: about 2 ms for a typical answer (six sentences, eight passages) against a second or
more for encoding the sentences of the answer and of its passages on this machine's CPU, which
would also compete with the next question's embedding. It runs on a worker thread after the
``done`` event; its result is written, then published as a ``grounding`` event.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from django.db import transaction

from chat import grounding
from chat.context import Passage
from chat.events import CitationPayload, GroundingEvent
from chat.models import Message, MessageStatus
from usage.services import usage_record_grounding

logger = logging.getLogger(__name__)

# Providers whose answers quote the passages verbatim (the offline provider): their quotes are
# grounded by construction, and their fixed framing ("No language model provider is
# configured…", "Handbook, p. 3:") would be flagged. Not checked.
QUOTING_PROVIDERS = frozenset({"offline"})


def grounding_wanted(
    *, provider: str, complete: bool, sources: Sequence[CitationPayload], refused: bool = False
) -> bool:
    """Whether an answer is checked: complete, given passages, by a provider that writes, and
    not the pipeline's refusal (it says the documents do not answer, then quotes them)."""
    return complete and bool(sources) and not refused and provider not in QUOTING_PROVIDERS


def grounding_passages(
    *, sources: Sequence[CitationPayload], retrieved: Sequence[Passage] | None
) -> list[str]:
    """The texts of the passages given to the model, in the order of their citation numbers:
    the whole passage when the turn retrieved it (a source's ``quote`` is cut at
    ``QUOTE_CHARS``), else the quote."""
    by_chunk = {p.chunk_id: p.text for p in retrieved or () if p.chunk_id is not None}
    return [
        by_chunk.get(s["chunk_id"], s["quote"]) if s["chunk_id"] is not None else s["quote"]
        for s in sources
    ]


def grounding_stored(*, report: grounding.GroundingReport) -> dict[str, object]:
    """What the message keeps of a report: the share, the counts and the unsupported spans."""
    return {
        "supported_share": report.supported_share,
        "counted": report.counted,
        "supported": report.supported,
        "unsupported": [{"start": s.start, "end": s.end} for s in report.unsupported],
    }


@transaction.atomic
def message_grounding_record(
    *, message_id: int, report: grounding.GroundingReport
) -> GroundingEvent | None:
    """Store ``report`` on the complete message ``message_id`` and its share on its usage
    record; the ``grounding`` event to publish, None when the message is gone or not complete."""
    stored = grounding_stored(report=report)
    written = Message.objects.filter(pk=message_id, status=MessageStatus.COMPLETE).update(
        grounding=stored
    )
    if not written:
        return None
    usage_record_grounding(message_id=message_id, grounded_share=report.supported_share)
    return {
        "type": "grounding",
        "message_id": message_id,
        "supported_share": report.supported_share,
        "unsupported": [{"start": s.start, "end": s.end} for s in report.unsupported],
    }
