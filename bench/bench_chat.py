"""Chat benchmarks: what the product adds to the first token, and many answers at once.

    python bench/bench_chat.py [--chunks 100000] [--questions 40] [--concurrent 100] [--json PATH]

1. Time to first token at a knowledge base of ``--chunks`` SYNTHETIC chunks (random unit
   vectors, Zipf-distributed words, stored as real Chunk rows in a temporary SQLite database).
   Measured in one run, interleaved question by question:
   - the fake provider's own first-token latency (the OpenAI-compatible adapter against the
     loopback fake, no product around it);
   - the bare hybrid search (``documents.retrieval.search``, query embedding included) and the
     query embedding alone; and the same search run as the product runs it, on the database
     thread through ``database_sync_to_async`` from an event loop (timed from the loop: the
     hop, a fresh connection and the thread arrangement, without any product code);
   - the product: a websocket client (``WebsocketCommunicator`` through ``ChatConsumer``) sends
     the question and waits for the first ``delta`` event: checks, retrieval, context
     optimisation, prompt, provider (the question and answer rows are saved meanwhile; the
     first event waits for them), event forwarded.
   Added time = product - the fake's first token for that same request, timed inside the
   product; the target is added <= 1.5 x (search + embed).
2. ``--concurrent`` answers streamed at once from one process, each to its own websocket
   client; each fake answer echoes its own question, so a token delivered to the wrong stream
   shows as a mismatch. Reports errors, mismatches and wall time.

The query encoder is the 384-d hashing ``FakeEncoder`` (the real model's encoding time would
add to search and product alike; ``bench_retrieval.py`` measures search at scale); with
``--encoder multilingual`` the knowledge base is a multilingual-e5-small one and its questions
are embedded by the real bundled model's query side (the chunk vectors stay synthetic). Run it
with ``ANSWER_WEAK_PASSAGE=0``: synthetic questions would otherwise be refused as weak.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DIM = 384
VOCAB = 50_000
WORDS_PER_CHUNK = 120
WORDS = [f"w{i}" for i in range(VOCAB)]


def setup_django(folder: Path, fake_url: str) -> None:
    os.environ.update(
        DJANGO_SETTINGS_MODULE="raggen.settings",
        DATA_DIR=str(folder),
        DATABASE_URL=f"sqlite:///{folder / 'bench.sqlite3'}",
        INDEX_DIR=str(folder / "indexes"),
        MEDIA_ROOT=str(folder / "media"),
        OPENAI_BASE_URL=f"{fake_url}/v1",
        OPENAI_MODEL="llama3.2",
        LLM_MAX_RETRIES="0",
        LOG_LEVEL="warning",
        BACKGROUND_TASKS="eager",
        RATE_LIMIT_CHAT_PER_MINUTE="0",  # one bench user asks hundreds of questions a minute
    )
    os.environ.pop("REDIS_URL", None)
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    p90 = ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))]
    return {"p50": round(statistics.median(ordered), 2), "p90": round(p90, 2)}


def build_kb(n: int, rng: np.random.Generator, choice: str = "local") -> Any:
    """A knowledge base of ``n`` synthetic chunks: rows in the database, vectors and BM25 in
    its index folder; ``choice`` its encoder (``local``: the hashing encoder of the bench,
    ``multilingual``: the real bundled multilingual-e5-small, whose name its index records)."""
    from django.contrib.auth import get_user_model

    from documents import retrieval as embeddings
    from documents.models import Chunk, Document, DocumentStatus, FileType, KnowledgeBase
    from documents.retrieval.local import index_folder
    from embeddings.store import open_index

    encoder = (
        embeddings.get_multilingual_encoder()
        if choice == "multilingual"
        else embeddings.get_encoder()
    )
    user = get_user_model().objects.create_user("bench", "bench@example.com", "x")
    kb = KnowledgeBase.objects.create(
        owner=user,
        name="Bench",
        encoder=choice,
        embedding_model=encoder.name,
        embedding_dimension=DIM,
    )
    ranks = np.arange(1, VOCAB + 1, dtype=np.float64) ** -1.07
    p = ranks / ranks.sum()
    step = 10_000
    t0 = time.perf_counter()
    index = open_index(index_folder(kb.pk))

    def batches() -> Any:
        for start in range(0, n, step):
            size = min(step, n - start)
            doc = Document.objects.create(
                knowledge_base=kb,
                title=f"Synthetic {start // step}",
                original_name=f"synthetic-{start // step}.pdf",
                file_type=FileType.PDF,
                sha256=f"{start:064d}",
                status=DocumentStatus.INDEXED,
            )
            words = rng.choice(VOCAB, size=(size, WORDS_PER_CHUNK), p=p)
            chunks = Chunk.objects.bulk_create(
                [
                    Chunk(
                        document=doc,
                        knowledge_base=kb,
                        ordinal=i,
                        text=" ".join(WORDS[w] for w in row),
                        page_start=i // 5 + 1,
                        page_end=i // 5 + 1,
                        char_start=i * 1000,
                        char_end=i * 1000 + 900,
                        text_sha256=f"{start + i:064d}",
                    )
                    for i, row in enumerate(words.tolist())
                ],
                batch_size=2000,
            )
            vectors = rng.standard_normal((size, DIM), dtype=np.float32)
            vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
            ids = np.asarray([c.pk for c in chunks], dtype=np.int64)
            yield ids, vectors, [[WORDS[w] for w in row] for row in words.tolist()]

    index.replace_all(batches(), model=encoder.name, dimension=DIM)
    print(f"built {n:,} chunks in {time.perf_counter() - t0:.1f} s")
    return kb


def questions(rng: np.random.Generator, count: int) -> list[str]:
    return [
        " ".join(WORDS[i] for i in rng.integers(50, 5000, size=int(rng.integers(3, 6)))) + f" q{k}"
        for k in range(count)
    ]


async def fake_first_token_ms(question: str) -> float:
    from providers.base import ChatMessage, ChatRequest
    from providers.registry import get_provider

    provider = get_provider("openai")
    request = ChatRequest(messages=(ChatMessage("user", question),))
    t0 = time.perf_counter()
    stream: Any = getattr(provider, "unwrapped_stream", provider.stream)(request)
    async for delta in stream:
        if delta.text:
            elapsed = (time.perf_counter() - t0) * 1000
            break
    await stream.aclose()
    return elapsed


def communicator(user: Any, conversation_id: int) -> Any:
    from channels.routing import URLRouter
    from channels.testing import WebsocketCommunicator

    from chat.routing import websocket_urlpatterns

    comm = WebsocketCommunicator(URLRouter(websocket_urlpatterns), f"/ws/chat/{conversation_id}/")
    comm.scope["user"] = user
    return comm


async def product_first_token_ms(
    user: Any, conversation_id: int, question: str
) -> tuple[float, str]:
    comm = communicator(user, conversation_id)
    # Connecting checks the conversation on the database thread, which 100 clients share.
    connected, _ = await comm.connect(timeout=60)
    assert connected
    t0 = time.perf_counter()
    await comm.send_json_to({"type": "send", "content": question})
    first = None
    text = ""
    while True:
        event = await comm.receive_json_from(timeout=60)
        if event["type"] == "delta":
            if first is None:
                first = (time.perf_counter() - t0) * 1000
            text += event["text"]
        elif event["type"] == "error":
            raise RuntimeError(event["message"])
        elif event["type"] == "done":
            break
    await comm.disconnect()
    assert first is not None
    return first, text


def time_provider_inside_product() -> list[float]:
    """Wrap the ``openai`` provider instance (the registry reuses it) so that each stream the
    product opens records its own first-token latency: the fake's time for that very request."""
    from providers.registry import get_provider

    provider = get_provider("openai")
    original = provider.stream
    samples: list[float] = []

    async def stream(request: Any) -> Any:
        t0 = time.perf_counter()
        first = True
        async for delta in original(request):
            if first and delta.text:
                samples.append((time.perf_counter() - t0) * 1000)
                first = False
            yield delta

    provider.stream = stream  # type: ignore[method-assign]
    provider.unwrapped_stream = original  # type: ignore[attr-defined]
    return samples


def bench_first_token(kb: Any, count: int, rng: np.random.Generator, out: dict[str, Any]) -> None:
    from asgiref.sync import async_to_sync
    from channels.db import database_sync_to_async

    from chat.models import Conversation, Message
    from documents import retrieval as embeddings

    # The knowledge base's query encoder: the hashing one, or e5's query side ("query: ").
    encoder = embeddings.query_encoder_for(knowledge_base=kb)
    inside = time_provider_inside_product()
    conversation = Conversation.objects.create(owner=kb.owner, provider="openai")
    conversation.knowledge_bases.set([kb])
    qs = questions(rng, count + 3)
    fake_ms: list[float] = []
    search_ms: list[float] = []
    embed_ms: list[float] = []
    product_ms: list[float] = []
    hop_ms: list[float] = []

    async def search_through_hop(query: str) -> float:
        t0 = time.perf_counter()
        await database_sync_to_async(embeddings.search)(knowledge_bases=[kb], query=query, top_k=16)
        return (time.perf_counter() - t0) * 1000

    for i, q in enumerate(qs):  # interleaved, so that machine noise hits all alike
        fake = async_to_sync(fake_first_token_ms)(q)
        t0 = time.perf_counter()
        encoder.encode([q + " e"])
        embed = (time.perf_counter() - t0) * 1000
        t0 = time.perf_counter()
        embeddings.search(knowledge_bases=[kb], query=q + " s", top_k=16)
        search = (time.perf_counter() - t0) * 1000
        hop = async_to_sync(search_through_hop)(q + " h")
        product, _ = async_to_sync(product_first_token_ms)(kb.owner, conversation.pk, q)
        Message.objects.filter(conversation=conversation).delete()  # keep history empty
        if i >= 3:  # warm-up
            fake_ms.append(fake)
            embed_ms.append(embed)
            search_ms.append(search)
            hop_ms.append(hop)
            product_ms.append(product)
    inside_ms = inside[3:]  # the first three answers were the warm-up
    added = [p - f for p, f in zip(product_ms, inside_ms, strict=True)]
    added_separate = [p - f for p, f in zip(product_ms, fake_ms, strict=True)]
    row = {
        "chunks": kb.chunks.count(),
        "questions": count,
        "fake_first_token_ms": percentiles(fake_ms),
        "query_embedding_ms": percentiles(embed_ms),
        "search_incl_embedding_ms": percentiles(search_ms),
        "search_through_database_thread_ms": percentiles(hop_ms),
        "product_first_token_ms": percentiles(product_ms),
        "fake_first_token_inside_product_ms": percentiles(inside_ms),
        "added_ms": percentiles(added),
        "added_vs_separate_fake_ms": percentiles(added_separate),
    }
    row["added_over_search_p50"] = round(
        row["added_ms"]["p50"] / row["search_incl_embedding_ms"]["p50"], 2
    )
    row["added_over_search_through_thread_p50"] = round(
        row["added_ms"]["p50"] / row["search_through_database_thread_ms"]["p50"], 2
    )
    row["omp_num_threads"] = os.environ.get("OMP_NUM_THREADS")
    row["query_encoder"] = encoder.name
    print(json.dumps(row))
    out["first_token"] = row


async def _concurrent(user: Any, conversation_ids: list[int]) -> dict[str, Any]:
    from providers.fakes._server import echo_tokens

    firsts: list[float] = []

    async def one(k: int, conversation_id: int) -> str:
        question = f"stream {k} marker{k}x"
        first, text = await product_first_token_ms(user, conversation_id, question)
        firsts.append(first)
        return "ok" if text == "".join(echo_tokens(question)) else "mismatch"

    t0 = time.perf_counter()
    results = await asyncio.gather(
        *(one(k, c) for k, c in enumerate(conversation_ids)), return_exceptions=True
    )
    wall = time.perf_counter() - t0
    errors = [repr(r) for r in results if isinstance(r, BaseException)]
    return {
        "streams": len(conversation_ids),
        "ok": sum(r == "ok" for r in results),
        "mismatches": sum(r == "mismatch" for r in results),
        "errors": len(errors),
        "first_errors": errors[:3],
        "wall_s": round(wall, 2),
        "first_token_ms": percentiles(firsts) if firsts else None,
    }


def bench_concurrent(user: Any, count: int, out: dict[str, Any]) -> None:
    from asgiref.sync import async_to_sync

    from chat.models import Conversation, Message, MessageStatus

    ids = [Conversation.objects.create(owner=user, provider="openai").pk for _ in range(count)]
    row = async_to_sync(_concurrent)(user, ids)
    row["stored_complete"] = Message.objects.filter(
        conversation_id__in=ids, role="assistant", status=MessageStatus.COMPLETE
    ).count()
    print(json.dumps(row))
    out["concurrent"] = row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--questions", type=int, default=40)
    parser.add_argument("--concurrent", type=int, default=100)
    parser.add_argument("--token-delay", type=float, default=0.01)
    parser.add_argument("--parts", default="first_token,concurrent")
    parser.add_argument("--json", type=Path)
    parser.add_argument(
        "--encoder",
        choices=("fake", "multilingual"),
        default="fake",
        help="the knowledge base's query encoder: the 384-d hashing one (default), or the real "
        "bundled multilingual-e5-small (its query side; the chunk vectors stay synthetic)",
    )
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "2")
    rng = np.random.default_rng(20261125)
    import http.server

    from providers.fakes import OpenAIFake, Script

    # The fake's listen backlog (socketserver's default: 5) would refuse a burst of 100
    # connections before any product code runs; a real LLM server accepts them.
    http.server.ThreadingHTTPServer.request_queue_size = 512
    out: dict[str, Any] = {"cores": os.cpu_count(), "synthetic": True, "encoder": args.encoder}
    with tempfile.TemporaryDirectory(prefix="bench-chat-") as tmp, OpenAIFake() as fake:
        fake.max_in_flight = max(200, args.concurrent * 2)
        fake.script = Script(token_delay=args.token_delay)
        setup_django(Path(tmp), fake.url)
        from documents import retrieval as embeddings
        from embeddings.encoder import FakeEncoder

        real = args.encoder == "multilingual"
        # With --encoder multilingual only the local choice is the hashing encoder.
        with embeddings.use_encoder(FakeEncoder(), choice="local" if real else ""):
            parts = set(args.parts.split(","))
            choice = "multilingual" if real else "local"
            kb = build_kb(args.chunks if "first_token" in parts else 10, rng, choice)
            if "first_token" in parts:
                print(f"\n## First token at {args.chunks:,} chunks")
                bench_first_token(kb, args.questions, rng, out)
            if "concurrent" in parts:
                print(f"\n## {args.concurrent} concurrent streamed answers")
                bench_concurrent(kb.owner, args.concurrent, out)
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
