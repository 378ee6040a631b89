"""``manage.py eval_retrieval PATH [--backend local|postgres]``: index a BEIR dataset into a
throw-away knowledge base through the product's own code path, search every test query and print
the metrics. ``--backend postgres`` needs DATABASE_URL to name PostgreSQL with pgvector (for a
throw-away one: ``python bench/with_pgvector.py python manage.py migrate`` then the command, in
one shell line; docs/EVALUATION.md, "Postgres backend")."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DatabaseError

from documents import retrieval
from documents.models import Chunk, Document, DocumentStatus, FileType, KnowledgeBase
from documents.models import Encoder as EncoderChoice
from documents.retrieval.backend import BACKENDS, SearchBackend, backend_named, get_backend
from documents.retrieval.cache import process_counters, text_sha256
from documents.retrieval.encoders import ENCODERS, encoder_for
from embeddings import evaluation
from embeddings.encoder import FakeEncoder

_BULK = 1000
_MODE_OF: dict[str, retrieval.Mode] = {
    "dense": "dense",
    "keyword": "keyword",
    "hybrid": "hybrid",
    "hybrid-rrf": "hybrid",
}


class Command(BaseCommand):
    help = "Evaluate retrieval on a BEIR-layout dataset (nDCG@10, Recall@10/100, MRR@10)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "path", type=Path, help="folder with corpus.jsonl, queries.jsonl, qrels/"
        )
        parser.add_argument(
            "--mode",
            choices=[*retrieval.MODES, "hybrid-rrf", "all"],
            default="all",
            help="all = dense, keyword, hybrid (convex fusion) and hybrid-rrf",
        )
        parser.add_argument("--split", default="test", help="qrels split (default: test)")
        parser.add_argument("--json", action="store_true", help="one JSON object on the last line")
        parser.add_argument("--run", type=Path, help="also write a TREC run file (all modes)")
        parser.add_argument("--top-k", type=int, default=100)
        parser.add_argument("--dense-weight", type=float, default=None)
        parser.add_argument("--keyword-weight", type=float, default=None)
        parser.add_argument("--fake-encoder", action="store_true", help="hashing encoder (smoke)")
        parser.add_argument(
            "--encoder",
            choices=list(ENCODERS),
            default=EncoderChoice.LOCAL.value,
            help="the knowledge base's encoder (default: local, the published MiniLM figures; "
            "multilingual: the bundled multilingual-e5-small)",
        )
        parser.add_argument(
            "--backend",
            choices=sorted(BACKENDS),
            help="the search backend (default: SEARCH_BACKEND); postgres needs PostgreSQL",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        folder: Path = options["path"]
        if not (folder / "corpus.jsonl").is_file():
            raise CommandError(f"{folder} has no corpus.jsonl")
        modes = [*retrieval.MODES, "hybrid-rrf"] if options["mode"] == "all" else [options["mode"]]
        self.backend: SearchBackend = (
            backend_named(options["backend"]) if options["backend"] else get_backend()
        )
        if options["fake_encoder"]:
            with retrieval.use_encoder(FakeEncoder()):
                result = self._evaluate(folder, modes, options)
        else:
            result = self._evaluate(folder, modes, options)
        self._report(result, options["json"])

    def _evaluate(self, folder: Path, modes: list[str], options: dict[str, Any]) -> dict[str, Any]:
        queries = evaluation.read_queries(folder)
        qrels = evaluation.read_qrels(folder, options["split"])
        owner = get_user_model().objects.create_user(f"eval-{uuid.uuid4().hex[:12]}")
        kb = KnowledgeBase.objects.create(
            owner=owner, name=f"eval {folder.name}", encoder=options["encoder"]
        )
        try:
            started = time.perf_counter()
            doc_ids = self._load_corpus(kb, folder)
            loaded = time.perf_counter()
            chunks = (
                Chunk.objects.filter(knowledge_base=kb).order_by("pk").iterator(chunk_size=2000)
            )
            self.backend.index_chunks(
                knowledge_base=kb, chunks=chunks, batch_size=retrieval.INDEX_BATCH
            )
            indexed = time.perf_counter()
            result: dict[str, Any] = {
                "dataset": folder.name,
                "backend": getattr(self.backend, "name", type(self.backend).__name__),
                "split": options["split"],
                "encoder": kb.encoder,
                "model": encoder_for(knowledge_base=kb).name,
                "corpus": len(doc_ids),
                "queries": len(qrels),
                "index_seconds": round(indexed - loaded, 1),
                "cache": vars(process_counters()),
                "modes": {},
            }
            run_file = options["run"].open("w") if options["run"] else None
            try:
                for mode in modes:
                    t0 = time.perf_counter()
                    run = self._search_all(kb, mode, queries, qrels, doc_ids, options)
                    seconds = time.perf_counter() - t0
                    metrics = evaluation.evaluate(run, qrels)
                    metrics["ms_per_query"] = round(1000 * seconds / max(len(qrels), 1), 1)
                    result["modes"][mode] = metrics
                    if run_file is not None:
                        evaluation.write_trec_run(run_file, run, f"raggen-{mode}")
            finally:
                if run_file is not None:
                    run_file.close()
            result["total_seconds"] = round(time.perf_counter() - started, 1)
            return result
        finally:
            self._clean_up(kb, owner)

    def _clean_up(self, kb: KnowledgeBase, owner: Any) -> None:
        self.backend.delete_knowledge_base(kb_id=kb.pk)
        try:
            owner.delete()  # cascades to the knowledge base, its documents and chunks
        except DatabaseError as exc:
            self.stderr.write(f"could not delete the throw-away user {owner.pk}: {exc}")

    def _load_corpus(self, kb: KnowledgeBase, folder: Path) -> dict[int, str]:
        """One document with one chunk per corpus entry; returns document pk -> corpus id."""
        doc_ids: dict[int, str] = {}
        batch: list[evaluation.CorpusDoc] = []
        for doc in evaluation.read_corpus(folder):
            batch.append(doc)
            if len(batch) == _BULK:
                doc_ids.update(self._store_batch(kb, batch))
                batch = []
        if batch:
            doc_ids.update(self._store_batch(kb, batch))
        return doc_ids

    def _store_batch(self, kb: KnowledgeBase, batch: list[evaluation.CorpusDoc]) -> dict[int, str]:
        documents = Document.objects.bulk_create(
            [
                Document(
                    knowledge_base=kb,
                    title=(d.title or d.doc_id)[:500],
                    original_name=d.doc_id,
                    file="",
                    file_type=FileType.TXT,
                    size=len(d.body),
                    sha256=text_sha256(d.body),
                    status=DocumentStatus.INDEXED,
                )
                for d in batch
            ]
        )
        Chunk.objects.bulk_create(
            [
                Chunk(
                    document=document,
                    knowledge_base=kb,
                    ordinal=0,
                    text=d.body,
                    char_end=len(d.body),
                    token_count=len(d.body.split()),
                    text_sha256=text_sha256(d.body),
                )
                for document, d in zip(documents, batch, strict=True)
            ]
        )
        return {document.pk: d.doc_id for document, d in zip(documents, batch, strict=True)}

    def _search_all(
        self,
        kb: KnowledgeBase,
        label: str,
        queries: dict[str, str],
        qrels: evaluation.Qrels,
        doc_ids: dict[int, str],
        options: dict[str, Any],
    ) -> evaluation.Run:
        mode = _MODE_OF[label]
        fusion = "rrf" if label == "hybrid-rrf" else "convex"
        run: evaluation.Run = {}
        for qid in qrels:
            if qid not in queries:
                continue
            result = self.backend.search(
                knowledge_bases=[kb],
                query=queries[qid],
                mode=mode,
                top_k=options["top_k"],
                min_score=None,
                dense_weight=options["dense_weight"],
                keyword_weight=options["keyword_weight"],
                document_ids=None,
                file_types=None,
                candidates=retrieval.CANDIDATES,
                query_vector=None,
                fusion=fusion,
            )
            run[qid] = [(doc_ids[h.document_id], h.score) for h in result.hits]
        return run

    def _report(self, result: dict[str, Any], as_json: bool) -> None:
        out = self.stdout
        out.write(
            f"{result['dataset']} ({result['split']}, {result['backend']} backend): "
            f"{result['corpus']} docs, "
            f"{result['queries']} queries, model {result['model']}, "
            f"indexed in {result['index_seconds']} s, cache {result['cache']}"
        )
        out.write(f"{'mode':<10} {'nDCG@10':>8} {'R@10':>8} {'R@100':>8} {'MRR@10':>8} {'ms/q':>7}")
        for mode, m in result["modes"].items():
            out.write(
                f"{mode:<10} {m['ndcg@10']:>8.4f} {m['recall@10']:>8.4f} {m['recall@100']:>8.4f} "
                f"{m['mrr@10']:>8.4f} {m['ms_per_query']:>7.1f}"
            )
        if as_json:
            out.write(json.dumps(result, sort_keys=True))
