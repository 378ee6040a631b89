"""One table maps application errors to status codes (``raggen.api``); no error carries one."""

from __future__ import annotations

import pytest

from accounts.errors import ApiTokenRejected
from core.errors import (
    ApplicationError,
    Conflict,
    InvalidInput,
    NotFound,
    PayloadTooLarge,
    PermissionDenied,
)
from core.ratelimit import RateLimited
from documents.retrieval import (
    EmbeddingProviderError,
    EmbeddingProviderUnavailable,
    EncoderNotConfigured,
    ModelChanged,
)
from raggen.api import STATUS_CODES, status_for
from usage.errors import QuotaExceeded


def _all_subclasses(cls: type) -> set[type]:
    found: set[type] = set()
    for sub in cls.__subclasses__():
        found |= {sub, *_all_subclasses(sub)}
    return found


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (ApplicationError("x"), 400),
        (InvalidInput("x"), 422),
        (NotFound("x"), 404),
        (PermissionDenied("x"), 403),
        (Conflict("x"), 409),
        (PayloadTooLarge("x"), 413),
        (QuotaExceeded("x"), 429),
        (RateLimited("x", limit=1, retry_after=1), 429),
        (ApiTokenRejected("x"), 401),
        (EncoderNotConfigured("x"), 400),
        (EmbeddingProviderError("x"), 502),
        (EmbeddingProviderUnavailable("x"), 503),
        # Not in the table: the nearest base class along the MRO answers.
        (ModelChanged("x"), 409),
    ],
)
def test_each_error_answers_with_the_status_of_the_table(error, status):
    assert status_for(error) == status


def test_an_error_class_unknown_to_the_table_answers_as_its_nearest_base():
    class Gone(NotFound):
        pass

    class Elsewhere(ApplicationError):
        pass

    assert (status_for(Gone("x")), status_for(Elsewhere("x"))) == (404, 400)


def test_no_application_error_carries_an_http_status_code():
    import raggen.urls  # noqa: F401  (imports every app's API, so every error class exists)

    errors = _all_subclasses(ApplicationError) | {ApplicationError}
    assert len(errors) >= len(STATUS_CODES)
    assert [cls.__qualname__ for cls in errors if hasattr(cls, "status_code")] == []


def test_a_retryable_provider_failure_is_its_own_class():
    assert EmbeddingProviderUnavailable.retryable
    assert not EmbeddingProviderError.retryable
    assert issubclass(EmbeddingProviderUnavailable, EmbeddingProviderError)
