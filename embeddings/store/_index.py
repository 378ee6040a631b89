"""The writing side of :class:`KnowledgeBaseIndex` (new segments, deletion, merging), and the
process-wide registry of open indexes."""

from __future__ import annotations

import io
import os
import threading
import uuid
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from embeddings import keyword
from embeddings.keyword import KeywordSegment
from embeddings.store._manifest import (
    MANIFEST,
    IndexCorrupt,
    Manifest,
    ModelMismatch,
    SegmentRef,
    atomic_write,
)
from embeddings.store._reader import IndexReader
from embeddings.store._segments import IntArray, Segment, Snapshot, load_faiss, new_dense

# A segment with more than this share of deleted chunks is rewritten on the next write.
PURGE_DELETED_SHARE = 0.3


class KnowledgeBaseIndex(IndexReader):
    """The dense + keyword index of one knowledge base, kept in ``folder``.

    Thread-safe. Several processes may hold one on the same folder: writes are serialised by a
    file lock, reads always see a complete version.
    """

    # --- writing ------------------------------------------------------------------------------

    def _file_lock(self) -> Any:
        from filelock import FileLock

        self.folder.mkdir(parents=True, exist_ok=True)
        return FileLock(str(self.folder / "write.lock"), timeout=self.lock_timeout)

    def _write_segment(
        self, ids: IntArray, vectors: NDArray[np.float32], kw: KeywordSegment, dimension: int
    ) -> tuple[SegmentRef, Segment]:
        kind = "hnsw" if len(ids) >= self.approximate_threshold else "flat"
        dense = new_dense(dimension, kind)
        if len(ids):
            dense.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), ids)
        name = f"seg-{uuid.uuid4().hex[:16]}"
        buffer = io.BytesIO()
        kw.save(buffer)
        files: dict[str, list[int]] = {}
        payloads = {
            ".faiss": load_faiss().serialize_index(dense).tobytes(),
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
        atomic_write(self.manifest_path, manifest.to_json().encode())
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
