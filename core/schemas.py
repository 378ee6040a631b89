"""The API's shared wire shapes: the one error body every failed operation answers with, the
status codes each kind of operation declares, and the bounded paginator.

Every error the API sends has the shape of ``ErrorOut``: ``detail`` is a sentence for the user
(application errors, 401) or the list of field errors of a request that failed validation (422,
as ninja writes them). Rate limits and quotas add ``code``, ``limit_value`` and ``retry_after``;
a duplicate upload adds the ids of the documents it repeats."""

from __future__ import annotations

from typing import Any

from ninja import Field, Schema
from ninja.conf import settings as ninja_settings
from ninja.pagination import LimitOffsetPagination
from pydantic import ConfigDict, ModelWrapValidatorHandler, ValidationInfo, model_validator
from pydantic_core import PydanticCustomError

# The largest offset a list accepts: far past any real list, and inside the 64-bit integers of
# SQLite and PostgreSQL (a 36-digit offset made SQLite fail with "datatype mismatch").
MAX_OFFSET = 1_000_000_000
# The most items one page holds.
MAX_LIMIT = 500


def _integral_floats_as_ints(value: Any) -> Any:
    """JSON Schema's ``integer`` includes ``5.0``; strict pydantic would refuse it."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {key: _integral_floats_as_ints(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_integral_floats_as_ints(item) for item in value]
    return value


class BodyIn(Schema):
    """A request body, or an object inside one: a JSON object whose values have the types the
    schema declares. Without this, ninja's schemas read any JSON value as an object with every
    field missing (``[null, null]`` was a valid update changing nothing) and pydantic's lax mode
    took ``"12"`` for 12 and ``true`` for 1: requests the published schema calls invalid. A
    number with no fraction (``5.0``) is an integer, as JSON Schema has it."""

    model_config = ConfigDict(strict=True)

    @model_validator(mode="wrap")
    @classmethod
    def _run_root_validator(
        cls, values: Any, handler: ModelWrapValidatorHandler[Any], info: ValidationInfo
    ) -> Any:
        # Replaces ninja's validator of the same name, which reads ``values`` through a getter
        # meant for model instances; a body is a dict (or an instance already built in code).
        if isinstance(values, cls):
            return handler(values)
        if not isinstance(values, dict):
            raise PydanticCustomError("model_type", "Input should be a JSON object")
        return handler(_integral_floats_as_ints(values))


class FieldErrorOut(Schema):
    """One field that failed validation: where (``["query", "limit"]``), what, and why."""

    type: str
    loc: list[str | int]
    msg: str


class ErrorOut(Schema):
    detail: str | list[FieldErrorOut] = Field(
        description="What went wrong, for the user; for a 422 from validation, one entry a field."
    )
    code: str | None = Field(None, description="rate_limited or quota_exceeded (429).")
    limit_value: int | None = Field(None, description="The limit that was reached (429).")
    retry_after: int | None = Field(None, description="Seconds until it may be tried again.")


def errors(*codes: int) -> dict[int, Any]:
    """The error responses of an operation: 401 (no or a bad credential) and 422 (invalid
    input), which every operation can answer, plus ``codes``."""
    return dict.fromkeys(sorted({401, 422, *codes}), ErrorOut)


class Pagination(LimitOffsetPagination):
    """ninja's limit/offset pagination with both numbers bounded: out of range is a 422."""

    class Input(Schema):
        limit: int = Field(ninja_settings.PAGINATION_PER_PAGE, ge=1, le=MAX_LIMIT)
        offset: int = Field(0, ge=0, le=MAX_OFFSET)
