"""The local backend rebuilds an index written by an older tokenizer (engine side:
``embeddings/tests/test_keyword.py``)."""

from __future__ import annotations

import numpy as np
import pytest

from documents import retrieval as services
from documents.models import Chunk
from documents.retrieval import local
from documents.retrieval.tests.factories import make_document
from embeddings import keyword, store
from embeddings.tests.test_keyword import mark_built_by_version_1


@pytest.mark.django_db
@pytest.mark.local_index
def test_a_search_on_an_index_of_an_older_tokenizer_rebuilds_it_with_the_current_one(kb):
    _, chunks = make_document(kb, ["José Piñera signed the contract", "the weather in Moscow"])
    services.index_chunks(knowledge_base=kb, chunks=chunks)
    folder = local.index_folder(kb.pk)
    ids = np.asarray([c.pk for c in chunks], dtype=np.int64)
    vectors = np.stack(
        [np.frombuffer(bytes(Chunk.objects.get(pk=c.pk).vector or b""), np.float32) for c in chunks]
    )
    # What tokenizer version 1 made of these texts: accented letters cut the words.
    old_tokens = [["jos", "pi", "era", "sign", "contract"], ["weather", "moscow"]]
    store.open_index(folder).replace_all(
        [(ids, vectors, old_tokens)], model=kb.embedding_model, dimension=kb.embedding_dimension
    )
    mark_built_by_version_1(folder)
    hits = services.search(knowledge_bases=[kb], query="Pinera", mode="keyword").hits
    assert [h.chunk_id for h in hits] == [chunks[0].pk]
    assert store.open_index(folder).snapshot().manifest.tokenizer == keyword.TOKENIZER_VERSION
