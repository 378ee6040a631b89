"""Faults where processes are the point: real child processes on the test's database."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from django.conf import settings
from django.db import connection

from conftest import ROOT, subprocess_env
from documents import retrieval as services
from documents.retrieval import local
from documents.retrieval.tests.factories import make_document
from embeddings import store

INDEXER = """
import sys, django
django.setup()
from documents.models import Chunk, KnowledgeBase
from documents import retrieval as services
from embeddings.encoder import FakeEncoder

kb = KnowledgeBase.objects.get(pk=int(sys.argv[1]))
with services.use_encoder(FakeEncoder()):
    for _ in range(int(sys.argv[4])):
        chunks = list(Chunk.objects.filter(document_id=int(sys.argv[2])).order_by("pk"))
        services.index_chunks(knowledge_base=kb, chunks=chunks, batch_size=int(sys.argv[3]))
print("done")
"""


def _start(script: Path, *args: object) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(script), *map(str, args)],
        env=subprocess_env(),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_importing_the_web_application_loads_neither_torch_nor_faiss():
    code = (
        "import sys, django; django.setup(); import raggen.urls, documents.retrieval, "
        "documents.retrieval.api; print(sorted(m for m in "
        "('torch', 'faiss', 'sentence_transformers') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        env=subprocess_env(),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert out.stdout.strip().splitlines()[-1] == "[]"


@pytest.mark.django_db(transaction=True)
def test_two_processes_indexing_into_one_knowledge_base_at_once_lose_and_duplicate_nothing(
    kb, tmp_path
):
    first, a = make_document(kb, [f"alpha {i} shared words" for i in range(60)], title="a")
    second, b = make_document(kb, [f"beta {i} shared words" for i in range(60)], title="b")
    script = tmp_path / "indexer.py"
    script.write_text(INDEXER)
    # Each process indexes its own document in small batches, twice (a retried task), and both
    # also index the first document, so the same chunks race each other too.
    procs = [
        _start(script, kb.pk, first.pk, 7, 2),
        _start(script, kb.pk, second.pk, 5, 2),
        _start(script, kb.pk, first.pk, 11, 1),
    ]
    for proc in procs:
        _out, err = proc.communicate(timeout=240)
        assert proc.returncode == 0, err
    store.forget(local.index_folder(kb.pk))
    stats = services.index_stats(knowledge_base=kb)
    assert stats.count == 120 and stats.database_count == 120
    if settings.SEARCH_BACKEND == "postgres":
        with connection.cursor() as cursor:
            cursor.execute("SELECT chunk_id FROM raggen_search_chunk WHERE kb_id = %s", [kb.pk])
            live_ids = np.asarray([row[0] for row in cursor.fetchall()])
    else:
        snap = store.open_index(local.index_folder(kb.pk)).snapshot()
        live_ids = np.concatenate(
            [s.segment.ids[~np.isin(s.segment.ids, s.deleted)] for s in snap.segments]
        )
    assert sorted(live_ids.tolist()) == sorted(c.pk for c in a + b)  # each chunk exactly once
    hits = services.search(knowledge_bases=[kb], query="shared words", top_k=200).hits
    assert len(hits) == 120


WRITER = """
import sys, django
django.setup()
import numpy as np
from embeddings import store
from embeddings.encoder import FakeEncoder
from pathlib import Path

index = store.KnowledgeBaseIndex(Path(sys.argv[1]), max_segments=3)
enc = FakeEncoder(dimension=16)
i = 1000
while True:
    ids = np.arange(i, i + 50)
    texts = [f"chunk {j}" for j in ids]
    index.add(ids, enc.encode(texts), [t.split() for t in texts], model="fake", dimension=16)
    print(i, flush=True)
    i += 50
"""


def test_a_writer_killed_mid_write_leaves_a_consistent_index_that_takes_new_writes(tmp_path):
    folder = tmp_path / "kb"
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    for delay in (0.8, 1.3, 2.1):
        proc = _start(script, folder)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        snap = store.KnowledgeBaseIndex(folder).snapshot()  # raises if inconsistent
        ids = [i for s in snap.segments for i in s.segment.ids.tolist()]
        assert len(set(ids)) == len(ids) == snap.count
    writer = store.KnowledgeBaseIndex(folder)  # the killed writer's lock is gone with it
    before = writer.snapshot().count
    snap = writer.add([1], np.full((1, 16), 0.25, np.float32), [["x"]], model="fake", dimension=16)
    assert snap.count == before + 1
    leftovers = [p.name for p in folder.iterdir() if p.name.startswith(".")]
    assert leftovers == []  # a killed writer's temporary files are swept by the next write
