"""Wire schemas of the API-token endpoints."""

from __future__ import annotations

from datetime import datetime

from ninja import Field, Schema

from core.schemas import BodyIn


class ApiTokenOut(Schema):
    id: int
    name: str
    prefix: str
    scope: str
    expires_at: datetime | None
    last_used_at: datetime | None
    created_at: datetime
    revoked_at: datetime | None


class ApiTokenCreateIn(BodyIn):
    name: str = Field(min_length=1, max_length=100)
    scope: str = Field("read", pattern="^(read|write)$")
    # An ISO 8601 string in JSON: parsed, as strict mode would not.
    expires_at: datetime | None = Field(None, strict=False)


class ApiTokenCreateOut(Schema):
    token: ApiTokenOut
    plaintext: str = Field(description="The token itself. It is shown only this once.")
