"""``manage.py rebuild_index [--kb ID] [--stale]``: rebuild knowledge bases' index files from the
database (re-embedding chunks of another model through the cache). ``--stale``: only those whose
files are missing, damaged or built by another tokenizer version (run at start-up by ``make run``
and the Docker image, so that an upgrade does not make the first search wait for a rebuild)."""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from documents import retrieval
from documents.models import KnowledgeBase


class Command(BaseCommand):
    help = "Rebuild the FAISS and BM25 index files of one or every knowledge base."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--kb", type=int, action="append", help="knowledge base id (repeatable)"
        )
        parser.add_argument(
            "--stale",
            action="store_true",
            help="only knowledge bases whose index is missing, damaged or outdated",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        kbs = KnowledgeBase.objects.order_by("pk")
        if options["kb"]:
            kbs = kbs.filter(pk__in=options["kb"])
            missing = set(options["kb"]) - set(kbs.values_list("pk", flat=True))
            if missing:
                raise CommandError(
                    f"no knowledge base with id {', '.join(map(str, sorted(missing)))}"
                )
        for kb in kbs:
            if options["stale"]:
                reason = retrieval.index_stale_reason(knowledge_base=kb)
                if reason is None:
                    continue
                self.stdout.write(f"knowledge base {kb.pk} ({kb.name}): {reason}")
            started = time.perf_counter()
            rebuilt = retrieval.rebuild_index(knowledge_base=kb)
            self.stdout.write(
                f"knowledge base {kb.pk} ({kb.name}): {rebuilt.count} chunks, "
                f"{rebuilt.model} {rebuilt.dimension}-d, version "
                f"{rebuilt.version}, {time.perf_counter() - started:.1f} s"
            )
