"""Deleting a document: its chunks leave the search index, then the rows, then the stored
file (``documents.stored_files``). Its own module so that ingestion (which deletes the version
a new one replaces) and the services share it without importing each other."""

from __future__ import annotations

from documents.models import Document
from documents.retrieval import remove_document
from documents.stored_files import stored_file_delete


def document_delete(*, document: Document) -> None:
    """Delete ``document``: its chunks leave the index first, then the rows, then the stored
    file (unless another version row still points at it). Search never returns it again."""
    remove_document(knowledge_base=document.knowledge_base, document_id=document.pk)
    name = document.file.name
    document.delete()
    if name and not Document.objects.filter(file=name).exists():
        stored_file_delete(name=name)
