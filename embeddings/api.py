"""Vector operations API (filled in by the retrieval engine)."""

from __future__ import annotations

from ninja import Router

router = Router(tags=["vectors"])
