"""Vector operations API: embed texts, search knowledge bases, add and delete vectors, stats."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

from django.http import HttpRequest
from django.utils.translation import gettext as _
from ninja import Query, Router, Status

from core.errors import NotFound
from core.ratelimit import rate_limit_request
from core.schemas import errors
from documents import retrieval
from documents.models import Document
from documents.retrieval import document_vectors
from documents.retrieval.schemas import (
    DocumentVectorOut,
    EmbedIn,
    EmbedOut,
    HitOut,
    IndexStatsOut,
    ScoresOut,
    SearchIn,
    SearchOut,
    SimilarDocumentOut,
    SimilarDocumentsOut,
    TextsAddIn,
    TextsAddOut,
    VectorsDeleteIn,
    VectorsDeleteOut,
)
from documents.selectors import knowledge_base_get_for_user

# Operation ids keep the names they had when this API lived in embeddings/api.py.
router = Router(tags=["vectors"])
# 413: too many or too long texts; 409: a document that is not indexed yet.
_ERRORS = errors(400, 403, 404, 409, 413)
# Embedding and searching are rate-limited like chat.
_RATED_ERRORS = errors(400, 403, 404, 409, 413, 429)


@router.post(
    "/vectors/embed",
    response={200: EmbedOut, **_RATED_ERRORS},
    summary="Embed texts",
    operation_id="embeddings_api_embed_texts",
)
def embed_texts(request: HttpRequest, payload: EmbedIn) -> EmbedOut:
    rate_limit_request("embed", request)
    vectors = retrieval.embed_texts(texts=payload.texts)
    encoder = retrieval.get_encoder()
    return EmbedOut(model=encoder.name, dimension=encoder.dimension, vectors=vectors.tolist())


@router.post(
    "/vectors/search",
    response={200: SearchOut, **_RATED_ERRORS},
    summary="Search knowledge bases",
    operation_id="embeddings_api_search_vectors",
)
def search_vectors(request: HttpRequest, payload: SearchIn) -> SearchOut:
    rate_limit_request("search", request)
    kbs = [
        knowledge_base_get_for_user(kb_id=kb_id, user=request.user)
        for kb_id in payload.knowledge_base_ids
    ]
    result = retrieval.search(
        knowledge_bases=kbs,
        query=payload.query,
        mode=payload.mode,
        top_k=payload.top_k,
        min_score=payload.min_score,
        dense_weight=payload.dense_weight,
        keyword_weight=payload.keyword_weight,
        document_ids=payload.document_ids,
        file_types=payload.file_types,
        query_vector=payload.vector,
        fusion=payload.fusion,
    )
    return SearchOut(
        mode=result.mode,
        dense_weight=result.dense_weight,
        keyword_weight=result.keyword_weight,
        notes=result.notes,
        hits=[_hit_out(h) for h in result.hits],
    )


def _hit_out(hit: retrieval.SearchHit) -> HitOut:
    fields = asdict(hit)
    scores = ScoresOut(
        dense=fields.pop("dense_score"),
        keyword=fields.pop("keyword_score"),
        fused=fields.pop("fused_score"),
    )
    return HitOut(position=fields.pop("ordinal"), scores=scores, **fields)


@router.post(
    "/vectors/{kb_id}/texts",
    response={201: TextsAddOut, **_ERRORS},
    summary="Add texts",
    operation_id="embeddings_api_add_texts",
)
def add_texts(request: HttpRequest, kb_id: int, payload: TextsAddIn) -> Status[TextsAddOut]:
    kb = knowledge_base_get_for_user(kb_id=kb_id, user=request.user, edit=True)
    added = retrieval.add_texts(
        knowledge_base=kb,
        texts=payload.texts,
        metadata=payload.metadata,
        title=payload.title,
        user=request.user,
    )
    return Status(201, TextsAddOut(document_id=added.document_id, chunk_ids=added.chunk_ids))


@router.post(
    "/vectors/{kb_id}/delete",
    response={200: VectorsDeleteOut, **_ERRORS},
    summary="Delete vectors",
    operation_id="embeddings_api_delete_vectors",
)
def delete_vectors(request: HttpRequest, kb_id: int, payload: VectorsDeleteIn) -> VectorsDeleteOut:
    kb = knowledge_base_get_for_user(kb_id=kb_id, user=request.user, edit=True)
    deleted = retrieval.delete_vectors(knowledge_base=kb, chunk_ids=payload.chunk_ids)
    return VectorsDeleteOut(deleted=deleted)


@router.get(
    "/vectors/{kb_id}/stats",
    response={200: IndexStatsOut, **_ERRORS},
    summary="Index statistics",
    operation_id="embeddings_api_index_stats",
)
def index_stats(request: HttpRequest, kb_id: int) -> IndexStatsOut:
    kb = knowledge_base_get_for_user(kb_id=kb_id, user=request.user)
    return IndexStatsOut(**asdict(retrieval.index_stats(knowledge_base=kb)))


def _document(request: HttpRequest, kb_id: int, document_id: int) -> Document:
    kb = knowledge_base_get_for_user(kb_id=kb_id, user=request.user)
    document = Document.objects.filter(pk=document_id, knowledge_base=kb).first()
    if document is None:
        raise NotFound(_("Document not found."))
    return document


@router.get(
    "/vectors/{kb_id}/documents/{document_id}/vector",
    response={200: DocumentVectorOut, **_ERRORS},
    summary="Document vector",
    description="The document's chunk vectors aggregated by the knowledge base's `aggregation`.",
    operation_id="embeddings_api_document_vector",
)
def document_vector(request: HttpRequest, kb_id: int, document_id: int) -> DocumentVectorOut:
    found = document_vectors.document_vector_get(document=_document(request, kb_id, document_id))
    return DocumentVectorOut(
        document_id=found.document_id,
        model=found.model,
        dimension=found.dimension,
        aggregation=found.aggregation,
        vector=found.vector.tolist(),
    )


@router.get(
    "/vectors/{kb_id}/documents/{document_id}/similar",
    response={200: SimilarDocumentsOut, **_ERRORS},
    summary="Similar documents",
    description="Documents of the knowledge base whose document vectors are closest (cosine).",
    operation_id="embeddings_api_similar_documents",
)
def similar_documents(
    request: HttpRequest,
    kb_id: int,
    document_id: int,
    top_k: Annotated[int, Query(ge=1, le=100)] = 10,
) -> SimilarDocumentsOut:
    document = _document(request, kb_id, document_id)
    found = document_vectors.similar_documents(document=document, top_k=top_k)
    return SimilarDocumentsOut(
        document_id=document.pk,
        results=[SimilarDocumentOut(**asdict(s)) for s in found],
    )
