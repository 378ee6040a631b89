"""``manage.py rebuild_index [--kb ID] [--stale] [--backend local|postgres]``: rebuild knowledge
bases' indexes from the database (re-embedding only chunks without a vector or of another model,
through the cache). ``--stale``: only those whose index is missing, damaged or built by another
tokenizer version (run at start-up by ``make run`` and the Docker image, so that an upgrade does
not make the first search wait for a rebuild). ``--backend``: that backend rather than
``SEARCH_BACKEND``'s; ``--backend postgres`` fills the postgres backend from the stored vectors,
the one step of a switch from local to postgres (then set ``SEARCH_BACKEND=postgres``)."""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from documents.models import KnowledgeBase
from documents.retrieval.backend import BACKENDS, backend_named, get_backend


class Command(BaseCommand):
    help = "Rebuild the search index (local files or postgres rows) of knowledge bases."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--kb", type=int, action="append", help="knowledge base id (repeatable)"
        )
        parser.add_argument(
            "--stale",
            action="store_true",
            help="only knowledge bases whose index is missing, damaged or outdated",
        )
        parser.add_argument(
            "--backend",
            choices=sorted(BACKENDS),
            help="the search backend to rebuild (default: SEARCH_BACKEND)",
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
        target = backend_named(options["backend"]) if options["backend"] else get_backend()
        for kb in kbs:
            if options["stale"]:
                reason = target.stale_reason(knowledge_base=kb)
                if reason is None:
                    continue
                self.stdout.write(f"knowledge base {kb.pk} ({kb.name}): {reason}")
            started = time.perf_counter()
            rebuilt = target.rebuild(knowledge_base=kb)
            self.stdout.write(
                f"knowledge base {kb.pk} ({kb.name}): {rebuilt.count} chunks, "
                f"{rebuilt.model} {rebuilt.dimension}-d, version "
                f"{rebuilt.version}, {time.perf_counter() - started:.1f} s"
            )
