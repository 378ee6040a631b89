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
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
import uuid
import zlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from embeddings import keyword
from embeddings.keyword import KeywordSegment, KeywordView

logger = logging.getLogger(__name__)

FORMAT = 1
MANIFEST = "manifest.json"
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 80
HNSW_EF_SEARCH = 128
# A segment with more than this share of deleted chunks is rewritten on the next write.
PURGE_DELETED_SHARE = 0.3

IntArray = NDArray[np.int64]


class IndexCorrupt(Exception):
    """The folder's manifest or one of its segment files is unreadable or does not match."""


class StaleIndex(IndexCorrupt):
    """The index's BM25 tokens were made by another tokenizer version than
    :data:`embeddings.keyword.TOKENIZER_VERSION`: queries would be tokenised differently from
    the indexed text, so it is rebuilt like a damaged one."""


class ModelMismatch(Exception):
    """Vectors of another model or dimension than the index was built with."""


@dataclass(frozen=True)
class SegmentRef:
    """A manifest entry: a segment's files and which of its chunks are deleted."""

    name: str
    count: int
    kind: str  # "flat" or "hnsw"
    files: dict[str, list[int]]  # suffix -> [size, crc32]
    deleted: tuple[int, ...] = ()

    @property
    def live(self) -> int:
        return self.count - len(self.deleted)


@dataclass(frozen=True)
class Manifest:
    version: int = 0
    model: str = ""
    dimension: int = 0
    latin_tokens: int = 0
    cyrillic_tokens: int = 0
    segments: tuple[SegmentRef, ...] = ()
    tokenizer: int = keyword.TOKENIZER_VERSION

    def count_live(self) -> int:
        return sum(s.live for s in self.segments)

    def to_json(self) -> str:
        data = {
            "format": FORMAT,
            "version": self.version,
            "model": self.model,
            "dimension": self.dimension,
            "latin_tokens": self.latin_tokens,
            "cyrillic_tokens": self.cyrillic_tokens,
            "tokenizer": self.tokenizer,
            "segments": [
                {
                    "name": s.name,
                    "count": s.count,
                    "kind": s.kind,
                    "files": s.files,
                    "deleted": list(s.deleted),
                }
                for s in self.segments
            ],
        }
        return json.dumps(data, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> Manifest:
        data = json.loads(text)
        if data.get("format") != FORMAT:
            raise ValueError(f"unknown manifest format {data.get('format')!r}")
        segments = tuple(
            SegmentRef(
                name=str(s["name"]),
                count=int(s["count"]),
                kind=str(s["kind"]),
                files={k: [int(v[0]), int(v[1])] for k, v in s["files"].items()},
                deleted=tuple(int(i) for i in s["deleted"]),
            )
            for s in data["segments"]
        )
        return cls(
            version=int(data["version"]),
            model=str(data["model"]),
            dimension=int(data["dimension"]),
            latin_tokens=int(data.get("latin_tokens", 0)),
            cyrillic_tokens=int(data.get("cyrillic_tokens", 0)),
            segments=segments,
            # Manifests written before the field existed were built by tokenizer version 1.
            tokenizer=int(data.get("tokenizer", 1)),
        )


@dataclass(frozen=True, eq=False)
class Segment:
    """A loaded segment: the FAISS index and the BM25 postings of the same chunks."""

    name: str
    kind: str
    dense: Any
    keyword: KeywordSegment

    @property
    def ids(self) -> IntArray:
        return self.keyword.ids

    def vectors(self) -> NDArray[np.float32]:
        """All stored vectors, in the order of :attr:`ids` (FAISS keeps insertion order)."""
        n = int(self.dense.ntotal)
        if n == 0:
            return np.zeros((0, int(self.dense.d)), dtype=np.float32)
        return np.asarray(self.dense.index.reconstruct_n(0, n), dtype=np.float32)


@dataclass(frozen=True, eq=False)
class LiveSegment:
    segment: Segment
    deleted: IntArray
    keyword: KeywordView


@dataclass(frozen=True, eq=False)
class Snapshot:
    """What one search sees: immutable, safe to use from any thread while writers move on."""

    manifest: Manifest
    segments: tuple[LiveSegment, ...] = field(default=())
    exists: bool = True

    @property
    def version(self) -> int:
        return self.manifest.version

    @property
    def count(self) -> int:
        return sum(s.live for s in self.manifest.segments)

    def keyword_views(self) -> list[KeywordView]:
        return [s.keyword for s in self.segments]


def _faiss() -> Any:
    import faiss

    return faiss


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    with tmp.open("wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    tmp.replace(path)
    _fsync_dir(path.parent)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _new_dense(dimension: int, kind: str) -> Any:
    faiss = _faiss()
    if kind == "hnsw":
        inner = faiss.IndexHNSWFlat(dimension, HNSW_M, faiss.METRIC_INNER_PRODUCT)
        inner.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
    else:
        inner = faiss.IndexFlatIP(dimension)
    return faiss.IndexIDMap2(inner)


class KnowledgeBaseIndex:
    """The dense + keyword index of one knowledge base, kept in ``folder``.

    Thread-safe. Several processes may hold one on the same folder: writes are serialised by a
    file lock, reads always see a complete version.
    """

    def __init__(
        self,
        folder: Path,
        *,
        approximate_threshold: int = 200_000,
        max_segments: int = 8,
        lock_timeout: float = 900.0,
    ) -> None:
        self.folder = folder
        self.approximate_threshold = approximate_threshold
        self.max_segments = max_segments
        self.lock_timeout = lock_timeout
        self._thread_lock = threading.RLock()
        self._loaded: dict[str, Segment] = {}
        self._snapshot: Snapshot | None = None
        self._stat_key: tuple[int, int, int] | None = None

    # --- reading ------------------------------------------------------------------------------

    @property
    def manifest_path(self) -> Path:
        return self.folder / MANIFEST

    def _stat(self) -> tuple[int, int, int] | None:
        try:
            st = self.manifest_path.stat()
        except FileNotFoundError:
            return None
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    def _read_manifest(self) -> Manifest | None:
        try:
            text = self.manifest_path.read_text()
        except FileNotFoundError:
            return None
        try:
            return Manifest.from_json(text)
        except (ValueError, KeyError, TypeError) as exc:
            raise IndexCorrupt(f"{self.manifest_path}: {exc}") from exc

    def stale_reason(self) -> str | None:
        """Why this folder's index cannot serve as it is (damaged manifest, another tokenizer
        version), or None; reads only the manifest. A missing index is not stale here: the
        caller knows whether it should exist."""
        try:
            manifest = self._read_manifest()
        except IndexCorrupt as exc:
            return str(exc)
        stale = manifest is not None and manifest.segments
        if stale and manifest is not None and manifest.tokenizer != keyword.TOKENIZER_VERSION:
            return (
                f"BM25 tokens of tokenizer version {manifest.tokenizer}, "
                f"not {keyword.TOKENIZER_VERSION}"
            )
        return None

    def snapshot(self) -> Snapshot:
        """The current version, reloading what changed since the last call.

        Raises :class:`IndexCorrupt` when the manifest or a segment file is damaged, and
        :class:`StaleIndex` (a kind of it) when another tokenizer version built the index.
        """
        key = self._stat()
        current = self._snapshot
        if current is not None and key == self._stat_key:
            return current
        with self._thread_lock:
            for attempt in range(5):
                key = self._stat()
                manifest = self._read_manifest()
                if manifest is None:
                    snap = Snapshot(Manifest(), exists=False)
                    self._publish(snap, key)
                    return snap
                try:
                    snap = self._materialise(manifest)
                except FileNotFoundError:
                    # A concurrent writer merged and removed it: read the newer manifest.
                    if attempt == 4:
                        raise IndexCorrupt(f"{self.folder}: a segment file is missing") from None
                    continue
                self._publish(snap, key)
                return snap
        raise AssertionError("unreachable")

    def _publish(self, snap: Snapshot, key: tuple[int, int, int] | None) -> None:
        self._snapshot = snap
        self._stat_key = key
        names = {s.segment.name for s in snap.segments}
        self._loaded = {n: seg for n, seg in self._loaded.items() if n in names}

    def _materialise(self, manifest: Manifest) -> Snapshot:
        if manifest.segments and manifest.tokenizer != keyword.TOKENIZER_VERSION:
            raise StaleIndex(
                f"{self.folder}: BM25 tokens of tokenizer version {manifest.tokenizer}, "
                f"not {keyword.TOKENIZER_VERSION}"
            )
        live: list[LiveSegment] = []
        for ref in manifest.segments:
            segment = self._loaded.get(ref.name) or self._load_segment(ref)
            self._loaded[ref.name] = segment
            deleted = np.asarray(sorted(ref.deleted), dtype=np.int64)
            live.append(LiveSegment(segment, deleted, keyword.view(segment.keyword, deleted)))
        return Snapshot(manifest, tuple(live))

    def _read_checked(self, ref: SegmentRef, suffix: str) -> bytes:
        path = self.folder / f"{ref.name}{suffix}"
        data = path.read_bytes()
        size, crc = ref.files[suffix]
        if len(data) != size or zlib.crc32(data) != crc:
            raise IndexCorrupt(f"{path}: size or checksum does not match the manifest")
        return data

    def _load_segment(self, ref: SegmentRef) -> Segment:
        import io

        dense_bytes = self._read_checked(ref, ".faiss")
        keyword_bytes = self._read_checked(ref, ".bm25.npz")
        try:
            dense = _faiss().deserialize_index(np.frombuffer(dense_bytes, dtype=np.uint8))
            kw = KeywordSegment.load(io.BytesIO(keyword_bytes))
        except (RuntimeError, ValueError, KeyError, OSError) as exc:
            raise IndexCorrupt(f"{self.folder}/{ref.name}: {exc}") from exc
        if int(dense.ntotal) != ref.count or kw.size != ref.count:
            raise IndexCorrupt(f"{self.folder}/{ref.name}: holds a different number of chunks")
        return Segment(ref.name, ref.kind, dense, kw)

    # --- writing ------------------------------------------------------------------------------

    def _file_lock(self) -> Any:
        from filelock import FileLock

        self.folder.mkdir(parents=True, exist_ok=True)
        return FileLock(str(self.folder / "write.lock"), timeout=self.lock_timeout)

    def _write_segment(
        self, ids: IntArray, vectors: NDArray[np.float32], kw: KeywordSegment, dimension: int
    ) -> tuple[SegmentRef, Segment]:
        import io

        kind = "hnsw" if len(ids) >= self.approximate_threshold else "flat"
        dense = _new_dense(dimension, kind)
        if len(ids):
            dense.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), ids)
        name = f"seg-{uuid.uuid4().hex[:16]}"
        buffer = io.BytesIO()
        kw.save(buffer)
        files: dict[str, list[int]] = {}
        payloads = {
            ".faiss": _faiss().serialize_index(dense).tobytes(),
            ".bm25.npz": buffer.getvalue(),
        }
        for suffix, data in payloads.items():
            path = self.folder / f"{name}{suffix}"
            with path.open("wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            files[suffix] = [len(data), zlib.crc32(data)]
        ref = SegmentRef(name=name, count=len(ids), kind=kind, files=files)
        return ref, Segment(name, kind, dense, kw)

    def _commit(self, manifest: Manifest) -> Snapshot:
        """Publish ``manifest`` (caller holds both locks), then delete unreferenced files."""
        _atomic_write(self.manifest_path, manifest.to_json().encode())
        snap = self._materialise(manifest)
        self._publish(snap, self._stat())
        keep = {MANIFEST, "write.lock"}
        keep |= {f"{s.name}{suffix}" for s in manifest.segments for suffix in s.files}
        for path in self.folder.iterdir():
            if path.name not in keep:
                path.unlink(missing_ok=True)
        return snap

    def _current_for_write(self) -> Manifest:
        manifest = self._read_manifest()
        if manifest is None:
            return Manifest()
        self._materialise(manifest)  # loads every segment, raising IndexCorrupt if damaged
        return manifest

    def add(
        self,
        ids: Sequence[int] | IntArray,
        vectors: NDArray[np.float32],
        token_lists: Sequence[Sequence[str]],
        *,
        model: str,
        dimension: int,
    ) -> Snapshot:
        """Add (or replace: an id already present is replaced) chunks with their vectors and
        BM25 tokens. Raises :class:`ModelMismatch` if the index holds another model's vectors."""
        id_array = np.asarray(ids, dtype=np.int64)
        if vectors.shape != (len(id_array), dimension) or len(token_lists) != len(id_array):
            raise ValueError("ids, vectors and token lists must have the same length")
        if len(np.unique(id_array)) != len(id_array):
            raise ValueError("chunk ids in one call must be unique")
        with self._thread_lock, self._file_lock():
            manifest = self._current_for_write()
            if manifest.count_live() and (manifest.model, manifest.dimension) != (model, dimension):
                raise ModelMismatch(
                    f"index holds {manifest.model} ({manifest.dimension}-d) vectors, "
                    f"not {model} ({dimension}-d): rebuild it"
                )
            segments = self._mark_deleted(manifest.segments, id_array)
            latin = cyrillic = 0
            for tokens in token_lists:
                la, cy = keyword.script_counts(tokens)
                latin, cyrillic = latin + la, cyrillic + cy
            if len(id_array):
                ref, segment = self._write_segment(
                    id_array,
                    vectors,
                    KeywordSegment.build(id_array.tolist(), token_lists),
                    dimension,
                )
                self._loaded[ref.name] = segment
                segments = (*segments, ref)
            manifest = replace(
                manifest,
                version=manifest.version + 1,
                model=model,
                dimension=dimension,
                tokenizer=keyword.TOKENIZER_VERSION,
                latin_tokens=manifest.latin_tokens + latin,
                cyrillic_tokens=manifest.cyrillic_tokens + cyrillic,
                segments=self._compact(segments, dimension),
            )
            return self._commit(manifest)

    def remove(self, ids: Sequence[int] | IntArray) -> Snapshot:
        """Mark chunks deleted; unknown ids are ignored."""
        id_array = np.asarray(ids, dtype=np.int64)
        with self._thread_lock, self._file_lock():
            manifest = self._current_for_write()
            if not manifest.segments:
                return self.snapshot()
            segments = self._mark_deleted(manifest.segments, id_array)
            manifest = replace(
                manifest,
                version=manifest.version + 1,
                segments=self._compact(segments, manifest.dimension),
            )
            return self._commit(manifest)

    def replace_all(
        self,
        batches: Iterable[tuple[IntArray, NDArray[np.float32], Sequence[Sequence[str]]]],
        *,
        model: str,
        dimension: int,
    ) -> Snapshot:
        """Build the index anew from ``batches`` (ids, vectors, token lists), then swap it in.
        Readers keep the old version until the new manifest is published."""
        with self._thread_lock, self._file_lock():
            previous = self._read_manifest_quietly()
            refs: list[SegmentRef] = []
            latin = cyrillic = 0
            seen: set[int] = set()
            for ids, vectors, token_lists in batches:
                fresh = np.asarray([i not in seen for i in ids.tolist()], dtype=bool)
                seen.update(ids.tolist())
                ids, vectors = ids[fresh], vectors[fresh]
                token_lists = [t for t, f in zip(token_lists, fresh, strict=True) if f]
                for tokens in token_lists:
                    la, cy = keyword.script_counts(tokens)
                    latin, cyrillic = latin + la, cyrillic + cy
                ref, segment = self._write_segment(
                    ids, vectors, KeywordSegment.build(ids.tolist(), token_lists), dimension
                )
                self._loaded[ref.name] = segment
                refs.append(ref)
            merged = self._merge(refs, dimension) if len(refs) > 1 else tuple(refs)
            manifest = Manifest(
                version=(previous.version if previous else 0) + 1,
                model=model,
                dimension=dimension,
                latin_tokens=latin,
                cyrillic_tokens=cyrillic,
                segments=merged,
            )
            return self._commit(manifest)

    def _read_manifest_quietly(self) -> Manifest | None:
        try:
            return self._read_manifest()
        except IndexCorrupt:
            return None

    def destroy(self) -> None:
        """Delete the folder (the knowledge base is gone)."""
        import shutil

        with self._thread_lock:
            shutil.rmtree(self.folder, ignore_errors=True)
            self._loaded.clear()
            self._snapshot = None
            self._stat_key = None

    # --- deletion and merging -----------------------------------------------------------------

    def _mark_deleted(self, refs: Sequence[SegmentRef], ids: IntArray) -> tuple[SegmentRef, ...]:
        out: list[SegmentRef] = []
        for ref in refs:
            if len(ids):
                segment = self._loaded[ref.name]
                hit = segment.ids[np.isin(segment.ids, ids)]
                if len(hit):
                    ref = replace(ref, deleted=tuple(sorted({*ref.deleted, *hit.tolist()})))
            if ref.live > 0:
                out.append(ref)
        return tuple(out)

    def _compact(self, refs: tuple[SegmentRef, ...], dimension: int) -> tuple[SegmentRef, ...]:
        """Rewrite segments with many deletions; merge the smallest while there are too many."""
        refs = tuple(
            self._merge([r], dimension)[0]
            if r.deleted and len(r.deleted) > PURGE_DELETED_SHARE * r.count
            else r
            for r in refs
        )
        while len(refs) > self.max_segments:
            by_size = sorted(refs, key=lambda r: (r.live, r.name))
            group = by_size[: max(2, len(refs) - self.max_segments + 1)]
            # Merge at least 4 small segments at once so that merges stay rare (log-structured).
            group = by_size[: max(len(group), min(4, len(by_size)))]
            names = {r.name for r in group}
            merged = self._merge(group, dimension)
            refs = (*(r for r in refs if r.name not in names), *merged)
        return refs

    def _merge(self, refs: Sequence[SegmentRef], dimension: int) -> tuple[SegmentRef, ...]:
        parts = []
        id_parts: list[IntArray] = []
        vector_parts: list[NDArray[np.float32]] = []
        for ref in refs:
            segment = self._loaded[ref.name]
            live = ~np.isin(segment.ids, np.asarray(ref.deleted, dtype=np.int64))
            parts.append((segment.keyword, live))
            id_parts.append(segment.ids[live])
            vector_parts.append(segment.vectors()[live])
        kw = KeywordSegment.merge(parts)
        if kw.size == 0:
            return ()
        ref, segment = self._write_segment(
            np.concatenate(id_parts), np.concatenate(vector_parts), kw, dimension
        )
        self._loaded[ref.name] = segment
        return (ref,)


@contextlib.contextmanager
def omp_threads(count: int) -> Iterator[None]:
    """FAISS's OpenMP threads for the calling thread while inside (0: unchanged). OpenMP keeps
    the setting per thread, so other threads (an ingestion building an index) keep theirs."""
    if count <= 0:
        yield
        return
    faiss = _faiss()
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(count)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)


def dense_search(
    snapshot: Snapshot,
    query: NDArray[np.float32],
    top_k: int,
    allowed: IntArray | None = None,
    *,
    threads: int = 0,
) -> keyword.Ranking:
    """The ``top_k`` (chunk id, inner product) pairs over the live chunks, best first, ties by id;
    ``allowed`` restricts the search to those chunk ids. ``threads``: FAISS threads for this
    one query (0: FAISS's default, every core)."""
    with omp_threads(threads):
        return _dense_search(snapshot, query, top_k, allowed)


def _dense_search(
    snapshot: Snapshot, query: NDArray[np.float32], top_k: int, allowed: IntArray | None
) -> keyword.Ranking:
    faiss = _faiss()
    q = np.ascontiguousarray(query.reshape(1, -1), dtype=np.float32)
    found_ids: list[IntArray] = []
    found_scores: list[NDArray[np.float32]] = []
    for live in snapshot.segments:
        seg = live.segment
        selector: Any = None
        limit = seg.keyword.size - len(live.deleted)
        if allowed is not None:
            candidates = np.setdiff1d(np.intersect1d(allowed, seg.ids), live.deleted)
            if not len(candidates):
                continue
            selector = faiss.IDSelectorBatch(candidates)
            limit = len(candidates)
        elif len(live.deleted):
            selector = faiss.IDSelectorNot(faiss.IDSelectorBatch(live.deleted))
        k = min(top_k, limit)
        if k <= 0:
            continue
        if seg.kind == "hnsw":
            params: Any = faiss.SearchParametersHNSW(sel=selector, efSearch=max(HNSW_EF_SEARCH, k))
        else:
            params = faiss.SearchParameters(sel=selector) if selector is not None else None
        scores, ids = seg.dense.search(q, k, params=params)
        if ids[0, -1] < 0:  # fewer than k found: FAISS pads the end with -1
            keep = ids[0] >= 0
            found_ids.append(ids[0][keep])
            found_scores.append(scores[0][keep])
        else:
            found_ids.append(ids[0])
            found_scores.append(scores[0])
    if not found_ids:
        return keyword.Ranking()
    if len(found_ids) == 1:
        # FAISS returns one segment's best first; only ties may be out of id order.
        only_ids, only_scores = found_ids[0], found_scores[0]
        if (only_scores[1:] < only_scores[:-1]).all():
            return keyword.Ranking.of(only_ids.astype(np.int64), only_scores.astype(np.float64))
    return keyword.top_by_score(np.concatenate(found_ids), np.concatenate(found_scores), top_k)


_registry: dict[Path, KnowledgeBaseIndex] = {}
_registry_lock = threading.Lock()


def open_index(folder: Path, *, approximate_threshold: int = 200_000) -> KnowledgeBaseIndex:
    """The process-wide :class:`KnowledgeBaseIndex` of ``folder`` (one object per folder, so
    that loaded segments are shared by every thread)."""
    with _registry_lock:
        index = _registry.get(folder)
        if index is None:
            index = KnowledgeBaseIndex(folder, approximate_threshold=approximate_threshold)
            _registry[folder] = index
        index.approximate_threshold = approximate_threshold
        return index


def forget(folder: Path) -> None:
    """Drop the process's object for ``folder`` (after the folder was deleted)."""
    with _registry_lock:
        _registry.pop(folder, None)
