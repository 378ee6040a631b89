"""The search structure of one knowledge base: FAISS (dense) and BM25 (keyword) in one folder.

Layout of a knowledge base's folder::

    manifest.json           version, model, dimension, tokenizer version, segments and their
                            deleted chunk ids
    write.lock              cross-process lock held by writers
    <segment>.faiss         IndexIDMap2(IndexFlatIP) or IndexIDMap2(IndexHNSWFlat): ids = chunk ids
    <segment>.bm25.npz      the same chunks' BM25 postings (embeddings.keyword.KeywordSegment)

Segments are immutable. A writer takes the lock, re-reads the manifest, writes new segment files,
then replaces the manifest atomically (temporary file + fsync + rename): a writer killed at any
point leaves the previous manifest, which names only complete files. Readers need no lock: they
notice a new manifest (its inode changes on rename), load only the segments they do not hold
yet, and keep serving the old snapshot meanwhile. Every file's size and CRC-32 are in the
manifest; a file that does not match raises :class:`IndexCorrupt`, and the caller rebuilds the
folder from the database; so does an index whose BM25 tokens were made by another version of
the tokenizer (:class:`StaleIndex`). Usually there is one large segment plus a few small recent
ones; whenever there are more than ``max_segments`` the smallest are merged.

Plain Python: faiss and filelock are imported when an index is first touched.

Modules: ``_manifest`` (the manifest, the errors, atomic writes), ``_segments`` (loaded segments
and snapshots), ``_reader`` and ``_index`` (:class:`KnowledgeBaseIndex`: reading, then writing
and the per-process registry), ``_dense`` (the FAISS search). Import from this package.
"""

from embeddings.store._dense import dense_search, omp_threads
from embeddings.store._index import PURGE_DELETED_SHARE, KnowledgeBaseIndex, forget, open_index
from embeddings.store._manifest import (
    FORMAT,
    MANIFEST,
    IndexCorrupt,
    Manifest,
    ModelMismatch,
    SegmentRef,
    StaleIndex,
)
from embeddings.store._segments import (
    HNSW_EF_CONSTRUCTION,
    HNSW_EF_SEARCH,
    HNSW_M,
    IntArray,
    LiveSegment,
    Segment,
    Snapshot,
)

__all__ = [
    "FORMAT",
    "HNSW_EF_CONSTRUCTION",
    "HNSW_EF_SEARCH",
    "HNSW_M",
    "MANIFEST",
    "PURGE_DELETED_SHARE",
    "IndexCorrupt",
    "IntArray",
    "KnowledgeBaseIndex",
    "LiveSegment",
    "Manifest",
    "ModelMismatch",
    "Segment",
    "SegmentRef",
    "Snapshot",
    "StaleIndex",
    "dense_search",
    "forget",
    "omp_threads",
    "open_index",
]
