"""Bulk import from the command line: ``manage.py ingest PATH... --kb NAME [--create]``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from core.errors import ApplicationError
from documents import ingestion, services
from documents.models import Document, DocumentStatus, KnowledgeBase

_READ_BLOCK = 1024 * 1024


def _files(paths: list[str]) -> Iterator[Path]:
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            yield from sorted(
                p for p in path.rglob("*") if p.is_file() and not p.name.startswith(".")
            )
        elif path.is_file():
            yield path
        else:
            raise CommandError(f"{raw}: no such file or folder")


def _read_blocks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as handle:
        while block := handle.read(_READ_BLOCK):
            yield block


class Command(BaseCommand):
    help = (
        "Upload files (folders recursively) into a knowledge base and index them now, printing "
        "one line per file: indexed, duplicate, failed or rejected, with the reason. Exit status "
        "1 when any file failed or was rejected."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("paths", nargs="+", help="files or folders")
        parser.add_argument("--kb", required=True, help="knowledge base name")
        parser.add_argument("--create", action="store_true", help="create the knowledge base")
        parser.add_argument(
            "--owner", help="owner's username (default: the first superuser); with --create"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        kb = self._knowledge_base(options["kb"], options["create"], options.get("owner"))
        bad = 0
        for path in _files(options["paths"]):
            outcome = self._ingest_one(kb, path)
            self.stdout.write(f"{path}\t{outcome}")
            bad += outcome.startswith(("failed", "rejected"))
        if bad:
            raise CommandError(f"{bad} file(s) were not indexed")

    def _knowledge_base(self, name: str, create: bool, owner_name: str | None) -> KnowledgeBase:
        matches = list(KnowledgeBase.objects.filter(name=name))
        if len(matches) > 1 and owner_name:
            matches = [kb for kb in matches if kb.owner.get_username() == owner_name]
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise CommandError(f"several knowledge bases are named {name!r}: add --owner USERNAME")
        if not create:
            raise CommandError(f"no knowledge base named {name!r}: add --create to make it")
        users = get_user_model().objects
        owner = (
            users.filter(username=owner_name).first()
            if owner_name
            else users.filter(is_superuser=True).order_by("pk").first()
        )
        if owner is None:
            raise CommandError("no owner: pass --owner USERNAME or create an administrator first")
        return services.knowledge_base_create(owner=owner, name=name)

    def _ingest_one(self, kb: KnowledgeBase, path: Path) -> str:
        try:
            result = services.document_upload(
                knowledge_base=kb,
                user=None,
                name=path.name,
                chunks=_read_blocks(path),
                queue=False,
            )
        except ApplicationError as exc:
            return f"rejected: {exc.message}"
        document = result.document
        if result.duplicate:
            return f"duplicate of document {document.pk} ({document.original_name})"
        try:
            ingestion.document_ingest(document.pk)  # now, in this process
        except ingestion.TransientIngestError as exc:
            return f"failed: {exc} (temporary: run the command again to retry)"
        document = Document.objects.get(pk=document.pk)
        if document.status == DocumentStatus.INDEXED:
            pages = f", {document.page_count} pages" if document.page_count else ""
            return f"indexed: document {document.pk}, {document.chunk_count} chunks{pages}"
        if document.status == DocumentStatus.FAILED:
            return f"failed: {document.failure_reason}"
        return f"{document.status}: document {document.pk}"
