"""The usage records as CSV, streamed: cells a spreadsheet will not run as formulas."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator

from usage.models import UsageRecord
from usage.selectors import Period, usage_in_period

CSV_COLUMNS = (
    "id",
    "created_at",
    "user",
    "provider",
    "model",
    "status",
    "error_kind",
    "prompt_tokens",
    "completion_tokens",
    "first_token_ms",
    "total_ms",
    "knowledge_base_ids",
    "passages_retrieved",
    "best_score",
    "no_good_context",
    "refused",
    "grounded_share",
    "question",
)


def _cell(text: str) -> str:
    """Text a spreadsheet will not run as a formula (CSV injection)."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


class _Echo:
    """A file-like object whose ``write`` returns the line, for a streaming CSV writer."""

    def write(self, value: str) -> str:
        return value


def usage_csv_lines(*, records: Iterable[UsageRecord]) -> Iterator[str]:
    """The records as CSV lines (a header first), for a streaming response."""
    writer = csv.writer(_Echo())
    yield writer.writerow(CSV_COLUMNS)
    for r in records:
        yield writer.writerow(
            (
                r.pk,
                r.created_at.isoformat(),
                _cell(r.user.get_username()) if r.user else "",
                r.provider,
                r.model,
                r.status,
                r.error_kind,
                r.prompt_tokens,
                r.completion_tokens,
                "" if r.first_token_ms is None else r.first_token_ms,
                r.total_ms,
                " ".join(str(i) for i in r.knowledge_base_ids),
                "" if r.passages_retrieved is None else r.passages_retrieved,
                "" if r.best_score is None else f"{r.best_score:.4f}",
                int(r.no_good_context),
                int(r.refused),
                "" if r.grounded_share is None else f"{r.grounded_share:.4f}",
                _cell(r.question),
            )
        )


def usage_csv_records(*, period: Period) -> Iterator[UsageRecord]:
    return (
        usage_in_period(period=period)
        .select_related("user")
        .order_by("created_at", "id")
        .iterator(2000)
    )
