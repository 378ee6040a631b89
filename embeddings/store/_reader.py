"""The reading side of :class:`embeddings.store.KnowledgeBaseIndex`: snapshots without a
lock, reloading only what changed since the last one."""

from __future__ import annotations

import io
import threading
import zlib
from pathlib import Path

import numpy as np

from embeddings import keyword
from embeddings.keyword import KeywordSegment
from embeddings.store._manifest import MANIFEST, IndexCorrupt, Manifest, SegmentRef, StaleIndex
from embeddings.store._segments import LiveSegment, Segment, Snapshot, load_faiss


class IndexReader:
    """State and reads; :class:`embeddings.store.KnowledgeBaseIndex` adds the writes."""

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
        dense_bytes = self._read_checked(ref, ".faiss")
        keyword_bytes = self._read_checked(ref, ".bm25.npz")
        try:
            dense = load_faiss().deserialize_index(np.frombuffer(dense_bytes, dtype=np.uint8))
            kw = KeywordSegment.load(io.BytesIO(keyword_bytes))
        except (RuntimeError, ValueError, KeyError, OSError) as exc:
            raise IndexCorrupt(f"{self.folder}/{ref.name}: {exc}") from exc
        if int(dense.ntotal) != ref.count or kw.size != ref.count:
            raise IndexCorrupt(f"{self.folder}/{ref.name}: holds a different number of chunks")
        return Segment(ref.name, ref.kind, dense, kw)
