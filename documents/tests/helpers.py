"""Helpers of the documents tests: real files from shared/testdata, uploads through services."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from documents import services
from documents.models import Document, KnowledgeBase

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT.parent / "shared" / "testdata" / "docs"


def upload_path(kb: KnowledgeBase, path: Path, user: Any = None, **kwargs: Any) -> Document:
    """Upload a file from disk as a user would, and return the (refreshed) document."""
    result = services.document_upload(
        knowledge_base=kb, user=user, name=path.name, chunks=[path.read_bytes()], **kwargs
    )
    result.document.refresh_from_db()
    return result.document


def upload_bytes(
    kb: KnowledgeBase, name: str, data: bytes, user: Any = None, **kwargs: Any
) -> Document:
    result = services.document_upload(
        knowledge_base=kb, user=user, name=name, chunks=[data], **kwargs
    )
    result.document.refresh_from_db()
    return result.document
