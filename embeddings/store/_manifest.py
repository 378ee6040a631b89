"""A knowledge base folder's manifest (what is published), the store's errors, and the atomic
write that publishes a manifest."""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import dataclass
from pathlib import Path

from embeddings import keyword

FORMAT = 1
MANIFEST = "manifest.json"


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


def atomic_write(path: Path, data: bytes) -> None:
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
