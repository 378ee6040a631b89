"""The vector API's writes and embeddings: texts embedded on request, texts added to a knowledge
base as the chunks of a new document, chunks deleted by id."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils.translation import gettext as _

from core.errors import InvalidInput, PayloadTooLarge
from documents.models import Chunk, ChunkMetadata, Document, DocumentStatus, FileType, KnowledgeBase
from documents.retrieval.backend import get_backend
from documents.retrieval.cache import encode_cached, text_sha256
from documents.retrieval.encoders import get_encoder
from documents.retrieval.local import INDEX_BATCH
from embeddings.encoder import Vectors

# Limits of one API call: enough for a page of chunks, small enough to answer in seconds.
MAX_TEXTS_PER_CALL = 256
MAX_TEXT_CHARS = 20_000


def validate_texts(*, texts: Sequence[str]) -> None:
    """Raises :class:`InvalidInput` for no text or a blank one, :class:`PayloadTooLarge` for more
    than ``MAX_TEXTS_PER_CALL`` texts or one longer than ``MAX_TEXT_CHARS`` characters."""
    if not texts:
        raise InvalidInput(_("Give at least one text."))
    if len(texts) > MAX_TEXTS_PER_CALL:
        raise PayloadTooLarge(
            _("Too many texts in one call: %(count)s, at most %(limit)s.")
            % {"count": len(texts), "limit": MAX_TEXTS_PER_CALL},
            {"limit": MAX_TEXTS_PER_CALL},
        )
    for position, text in enumerate(texts):
        if not text.strip():
            raise InvalidInput(
                _("Text %(index)s is empty.") % {"index": position}, {"index": position}
            )
        if len(text) > MAX_TEXT_CHARS:
            raise PayloadTooLarge(
                _("Text %(index)s has %(count)s characters, at most %(limit)s.")
                % {"index": position, "count": len(text), "limit": MAX_TEXT_CHARS},
                {"index": position, "limit": MAX_TEXT_CHARS},
            )


def embed_texts(*, texts: Sequence[str]) -> Vectors:
    """Unit-length vectors of ``texts`` from the cache or the encoder (one row per text).
    Raises as :func:`validate_texts` does."""
    validate_texts(texts=texts)
    return encode_cached(
        encoder=get_encoder(), texts=texts, batch_size=settings.EMBEDDING_BATCH_SIZE
    )


@dataclass(frozen=True)
class AddedTexts:
    document_id: int
    chunk_ids: list[int]


def add_texts(
    *,
    knowledge_base: KnowledgeBase,
    texts: Sequence[str],
    metadata: Sequence[dict[str, Any]] | None = None,
    title: str = "",
    user: Any = None,
) -> AddedTexts:
    """Store ``texts`` as the chunks of one new text document of ``knowledge_base`` and index
    them; ``metadata[i]`` (optional) is kept with chunk i and returned with search hits. Keys
    ``page`` and ``heading_path`` also fill the chunk's own fields. Raises as
    :func:`validate_texts` does, and :class:`ModelChanged`."""
    validate_texts(texts=texts)
    metas = list(metadata) if metadata is not None else [{} for _ in texts]
    if len(metas) != len(texts):
        raise InvalidInput(_("Give one metadata object per text, or none."))
    body = "\n\n".join(texts)
    with transaction.atomic():
        document = Document.objects.create(
            knowledge_base=knowledge_base,
            title=title or (texts[0][:80] if texts else "texts"),
            original_name="api-texts.txt",
            file="",
            file_type=FileType.TXT,
            size=len(body.encode()),
            sha256=text_sha256(body),
            status=DocumentStatus.INDEXED,
            progress=100,
            chunk_count=len(texts),
            uploaded_by=user if user is not None and user.is_authenticated else None,
        )
        chunks = []
        offset = 0
        for ordinal, (text, meta) in enumerate(zip(texts, metas, strict=True)):
            page = meta.get("page")
            chunks.append(
                Chunk(
                    document=document,
                    knowledge_base=knowledge_base,
                    ordinal=ordinal,
                    text=text,
                    heading_path=str(meta.get("heading_path", ""))[:1000],
                    page_start=page if isinstance(page, int) and page >= 0 else None,
                    page_end=page if isinstance(page, int) and page >= 0 else None,
                    char_start=offset,
                    char_end=offset + len(text),
                    token_count=len(text.split()),
                    text_sha256=text_sha256(text),
                )
            )
            offset += len(text) + 2
        Chunk.objects.bulk_create(chunks)
        ChunkMetadata.objects.bulk_create(
            [ChunkMetadata(chunk=c, data=m) for c, m in zip(chunks, metas, strict=True) if m]
        )
    get_backend().index_chunks(knowledge_base=knowledge_base, chunks=chunks, batch_size=INDEX_BATCH)
    return AddedTexts(document.pk, [c.pk for c in chunks])


def delete_vectors(*, knowledge_base: KnowledgeBase, chunk_ids: Sequence[int]) -> int:
    """Delete these chunks of ``knowledge_base`` (rows and index entries); ids of other
    knowledge bases are ignored. Returns how many were deleted."""
    ids = list(
        Chunk.objects.filter(knowledge_base=knowledge_base, pk__in=chunk_ids).values_list(
            "id", flat=True
        )
    )
    if ids:
        get_backend().remove_chunks(knowledge_base=knowledge_base, chunk_ids=ids)
        Chunk.objects.filter(pk__in=ids).delete()
    return len(ids)
