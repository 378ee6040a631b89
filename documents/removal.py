"""Deleting a document: its chunks leave the search index, then the rows, then the stored
file. Its own module so that ingestion (which deletes the version a new one replaces) and the
services share it without importing each other."""

from __future__ import annotations

import logging

from django.core.files.storage import default_storage

from documents.models import Document
from documents.retrieval import remove_document

logger = logging.getLogger(__name__)


def document_delete(*, document: Document) -> None:
    """Delete ``document``: its chunks leave the index first, then the rows, then the stored
    file (unless another version row still points at it). Search never returns it again."""
    remove_document(knowledge_base=document.knowledge_base, document_id=document.pk)
    name = document.file.name
    document.delete()
    if name and not Document.objects.filter(file=name).exists():
        stored_file_delete(name=name)


def stored_file_delete(*, name: str) -> None:
    """Delete a stored upload; a missing name (texts added through the vector API) or a
    failing storage is not an error (logged)."""
    if not name:  # texts added through the vector API have no stored file
        return
    try:
        default_storage.delete(name)
    except OSError:
        logger.warning("could not delete stored file %s", name)
