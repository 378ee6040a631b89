"""``manage.py ask "QUESTION" [--provider P] [--model M] [--kb NAME]``: the answer pipeline in a
terminal. Streams the answer, then prints the sources it cited, one a line."""

from __future__ import annotations

from typing import Any

from asgiref.sync import async_to_sync
from django.core.management.base import BaseCommand, CommandError, CommandParser

from chat.events import CitationPayload
from chat.pipeline import AnswerRequest, GenerationParams, answer_stream
from core.errors import ApplicationError
from documents.models import KnowledgeBase
from providers.errors import ProviderError
from providers.registry import default_provider_name


def source_line(citation: CitationPayload) -> str:
    """``[n] file name, p. 3, score 0.8123`` (the page only for paged documents)."""
    name = citation["file_name"] or citation["document_title"]
    page = f", p. {citation['page']}" if citation["page"] is not None else ""
    return f"[{citation['number']}] {name}{page}, score {citation['score']:.4f}"


class Command(BaseCommand):
    help = "Ask a question over knowledge bases (or none: a plain chat) and stream the answer."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("question")
        parser.add_argument("--provider", default="", help="default: DEFAULT_PROVIDER")
        parser.add_argument("--model", default="", help="default: the provider's")
        parser.add_argument(
            "--kb", action="append", default=[], help="knowledge base name (repeatable)"
        )
        parser.add_argument("--top-k", type=int, default=8)

    def handle(self, *args: Any, **options: Any) -> None:
        request = AnswerRequest(
            question=options["question"],
            provider=options["provider"] or default_provider_name(),
            model=options["model"],
            params=GenerationParams(top_k=options["top_k"]),
            knowledge_base_ids=tuple(self._kb_id(name) for name in options["kb"]),
        )
        try:
            citations = async_to_sync(self._stream)(request)
        except (ProviderError, ApplicationError) as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write("")
        if citations:
            self.stdout.write("Sources:")
        for citation in citations:
            self.stdout.write(source_line(citation))

    def _kb_id(self, name: str) -> int:
        ids = list(KnowledgeBase.objects.filter(name=name).values_list("pk", flat=True))
        if not ids:
            raise CommandError(f"There is no knowledge base called {name!r}.")
        if len(ids) > 1:
            raise CommandError(f"{len(ids)} knowledge bases are called {name!r}; rename one.")
        return ids[0]

    async def _stream(self, request: AnswerRequest) -> list[CitationPayload]:
        citations: list[CitationPayload] = []
        async for event in answer_stream(request):
            if event["type"] == "delta":
                if event["replaces"]:
                    self.stdout.write("\n")
                self.stdout.write(event["text"], ending="")
                self.stdout.flush()
            elif event["type"] == "citations":
                citations = event["citations"]
        return citations
