"""Knowledge bases and documents over the JSON API: thin endpoints over services/selectors."""

from __future__ import annotations

from typing import Annotated, Any

from django.http import FileResponse, HttpRequest
from django.utils.translation import gettext as _
from ninja import File, Query, Router, UploadedFile
from ninja.pagination import paginate
from ninja.responses import Status

from core.errors import Conflict, NotFound
from core.ratelimit import rate_limit_request
from core.schemas import MAX_OFFSET, Pagination, errors
from documents import selectors, services
from documents.detect import stored_filename
from documents.models import Document, KnowledgeBase, KnowledgeBaseShare
from documents.schemas import (
    DocumentDetailOut,
    DocumentOut,
    KnowledgeBaseIn,
    KnowledgeBaseOut,
    KnowledgeBasePatch,
    KnowledgeBaseUpdateOut,
    ShareIn,
    ShareInviteOut,
    ShareOut,
    SharePatch,
    UploadItemOut,
    UploadOut,
)
from documents.stored_files import stored_file_open

router = Router(tags=["knowledge bases and documents"])
_ERRORS = errors(400, 403, 404, 409, 413)
# Uploads are rate-limited too; they and downloads answer 503 while the file store is down.
_UPLOAD_ERRORS = errors(400, 403, 404, 409, 413, 429, 503)
_FILE_ERRORS = errors(400, 403, 404, 409, 413, 503)


@router.get("/knowledge-bases", response={200: list[KnowledgeBaseOut], **_ERRORS})
def list_knowledge_bases(request: HttpRequest) -> list[KnowledgeBase]:
    return list(selectors.knowledge_base_list_for_user(user=request.user))


@router.post("/knowledge-bases", response={201: KnowledgeBaseOut, **_ERRORS})
def create_knowledge_base(request: HttpRequest, payload: KnowledgeBaseIn) -> Status[Any]:
    kb = services.knowledge_base_create(owner=request.user, **payload.dict())  # type: ignore[arg-type]
    return Status(201, kb)


@router.get("/knowledge-bases/{kb_id}", response={200: KnowledgeBaseOut, **_ERRORS})
def get_knowledge_base(request: HttpRequest, kb_id: int) -> KnowledgeBase:
    return selectors.knowledge_base_get_for_user(kb_id=kb_id, user=request.user)


@router.patch("/knowledge-bases/{kb_id}", response={200: KnowledgeBaseUpdateOut, **_ERRORS})
def update_knowledge_base(
    request: HttpRequest, kb_id: int, payload: KnowledgeBasePatch
) -> dict[str, Any]:
    kb = selectors.knowledge_base_get_for_user(kb_id=kb_id, user=request.user, edit=True)
    reindexing = services.knowledge_base_update(kb=kb, **payload.dict(exclude_none=True))
    return {"knowledge_base": kb, "reindexing": reindexing}


@router.delete("/knowledge-bases/{kb_id}", response={204: None, **_ERRORS})
def delete_knowledge_base(request: HttpRequest, kb_id: int) -> Status[None]:
    kb = selectors.knowledge_base_get_for_user(kb_id=kb_id, user=request.user, manage=True)
    services.knowledge_base_delete(kb=kb)
    return Status(204, None)


@router.post("/knowledge-bases/{kb_id}/reindex", response={202: dict[str, int], **_ERRORS})
def reindex_knowledge_base(request: HttpRequest, kb_id: int) -> Status[dict[str, int]]:
    kb = selectors.knowledge_base_get_for_user(kb_id=kb_id, user=request.user, edit=True)
    return Status(202, {"queued": services.knowledge_base_reindex(kb=kb)})


@router.get("/knowledge-bases/{kb_id}/shares", response={200: list[ShareOut], **_ERRORS})
def list_shares(request: HttpRequest, kb_id: int) -> list[KnowledgeBaseShare]:
    """Who the knowledge base is shared with (its owner only)."""
    kb = selectors.knowledge_base_get_for_user(kb_id=kb_id, user=request.user, manage=True)
    return list(selectors.knowledge_base_share_list(kb=kb))


@router.post("/knowledge-bases/{kb_id}/shares", response={202: ShareInviteOut, **_ERRORS})
def share_knowledge_base(request: HttpRequest, kb_id: int, payload: ShareIn) -> Status[Any]:
    """Share with a user by user name or e-mail as ``viewer`` (search and chat) or ``editor``
    (also upload, delete and change settings); sharing again changes the role. The answer is
    the same whether or not such a user exists (no user enumeration): list the shares to see
    who has access."""
    kb = selectors.knowledge_base_get_for_user(kb_id=kb_id, user=request.user, manage=True)
    detail = services.knowledge_base_share_invite(
        knowledge_base=kb, actor=request.user, user=payload.user, role=payload.role
    )
    return Status(202, {"detail": detail})


@router.patch("/knowledge-bases/{kb_id}/shares/{share_id}", response={200: ShareOut, **_ERRORS})
def change_share(
    request: HttpRequest, kb_id: int, share_id: int, payload: SharePatch
) -> KnowledgeBaseShare:
    kb = selectors.knowledge_base_get_for_user(kb_id=kb_id, user=request.user, manage=True)
    share = selectors.knowledge_base_share_list(kb=kb).filter(pk=share_id).first()
    if share is None:
        raise NotFound(_("This knowledge base is not shared with that user."))
    return services.knowledge_base_share(
        knowledge_base=kb, actor=request.user, user=share.user.get_username(), role=payload.role
    )


@router.delete("/knowledge-bases/{kb_id}/shares/{share_id}", response={204: None, **_ERRORS})
def unshare_knowledge_base(request: HttpRequest, kb_id: int, share_id: int) -> Status[None]:
    kb = selectors.knowledge_base_get_for_user(kb_id=kb_id, user=request.user, manage=True)
    services.knowledge_base_unshare(knowledge_base=kb, actor=request.user, share_id=share_id)
    return Status(204, None)


@router.get("/knowledge-bases/{kb_id}/documents", response={200: list[DocumentOut], **_ERRORS})
@paginate(Pagination)
def list_documents(request: HttpRequest, kb_id: int, status: str = "") -> Any:
    kb = selectors.knowledge_base_get_for_user(kb_id=kb_id, user=request.user)
    return selectors.document_list_for_kb(kb=kb, status=status)


@router.post(
    "/knowledge-bases/{kb_id}/documents",
    response={201: UploadOut, **_UPLOAD_ERRORS},
    summary="Upload one or more files (PDF, DOCX, TXT, Markdown, HTML)",
)
def upload_documents(
    request: HttpRequest, kb_id: int, files: Annotated[list[UploadedFile], File(min_length=1)]
) -> Status[dict[str, Any]]:
    """Each file is stored and queued; the answer comes at once with each document's id and
    status. A file already in the knowledge base is not stored again: its item says
    ``duplicate`` and names the existing document, and when every file was a duplicate the
    answer is 409."""
    rate_limit_request("upload", request)
    kb = selectors.knowledge_base_get_for_user(kb_id=kb_id, user=request.user, edit=True)
    results = [
        services.document_upload(
            knowledge_base=kb, user=request.user, name=f.name or "upload", chunks=f.chunks()
        )
        for f in files
    ]
    if results and all(r.duplicate for r in results):
        names = ", ".join(
            _("%(name)s is already document %(id)s (%(original)s)")
            % {"name": r.name, "id": r.document.pk, "original": r.document.original_name}
            for r in results
        )
        raise Conflict(
            _("Already in this knowledge base: %(names)s.") % {"names": names},
            {"existing_document_ids": [r.document.pk for r in results]},
        )
    items = [{"name": r.name, "duplicate": r.duplicate, "document": r.document} for r in results]
    return Status(201, {"documents": items})


@router.get("/documents/{doc_id}", response={200: DocumentDetailOut, **_ERRORS})
def get_document(
    request: HttpRequest,
    doc_id: int,
    chunk_offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
    chunk_limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> dict[str, Any]:
    document = selectors.document_get_for_user(doc_id=doc_id, user=request.user)
    chunks = selectors.chunk_list_for_document(document=document)
    data = DocumentOut.from_orm(document).dict()
    data["chunks"] = list(chunks[chunk_offset : chunk_offset + chunk_limit])
    data["chunks_total"] = chunks.count()
    return data


@router.delete("/documents/{doc_id}", response={204: None, **_ERRORS})
def delete_document(request: HttpRequest, doc_id: int) -> Status[None]:
    document = selectors.document_get_for_user(doc_id=doc_id, user=request.user, edit=True)
    services.document_delete(document=document)
    return Status(204, None)


@router.post("/documents/{doc_id}/versions", response={201: UploadItemOut, **_UPLOAD_ERRORS})
def upload_document_version(
    request: HttpRequest, doc_id: int, file: File[UploadedFile]
) -> Status[dict[str, Any]]:
    """Upload a new version: the current one stays searchable until the new one is indexed."""
    rate_limit_request("upload", request)
    document = selectors.document_get_for_user(doc_id=doc_id, user=request.user, edit=True)
    result = services.document_upload(
        knowledge_base=document.knowledge_base,
        user=request.user,
        name=file.name or document.original_name,
        chunks=file.chunks(),
        replaces=document,
    )
    if result.duplicate:
        raise Conflict(
            _("This file is already document %(id)s (%(original)s).")
            % {"id": result.document.pk, "original": result.document.original_name},
            {"existing_document_id": result.document.pk},
        )
    return Status(201, {"name": result.name, "duplicate": False, "document": result.document})


@router.post("/documents/{doc_id}/reindex", response={202: DocumentOut, **_ERRORS})
def reindex_document(request: HttpRequest, doc_id: int) -> Status[Document]:
    document = selectors.document_get_for_user(doc_id=doc_id, user=request.user, edit=True)
    return Status(202, services.document_reindex(document=document))


@router.post("/documents/{doc_id}/retry", response={202: DocumentOut, **_ERRORS})
def retry_document(request: HttpRequest, doc_id: int) -> Status[Document]:
    document = selectors.document_get_for_user(doc_id=doc_id, user=request.user, edit=True)
    return Status(202, services.document_retry(document=document))


@router.get("/documents/{doc_id}/file", response={200: None, **_FILE_ERRORS})
def download_document(request: HttpRequest, doc_id: int) -> FileResponse:
    """The original file, typed by what detection decided, never by the uploaded name. A real
    PDF opens inline so that ``#page=N`` shows the cited page; anything else is a download.
    Every answer is sandboxed (``Content-Security-Policy: sandbox``) and never sniffed."""
    document = selectors.document_get_for_user(doc_id=doc_id, user=request.user)
    return _file_response(document)


_CONTENT_TYPES: dict[str, str] = {
    "pdf": "application/pdf",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "txt": "text/plain; charset=utf-8",
    "md": "text/markdown; charset=utf-8",
    "html": "text/html; charset=utf-8",
}


def _file_response(document: Document) -> FileResponse:
    if not document.file:  # texts added through the vector API have no stored file
        raise NotFound(_("This document has no original file."))
    # From the local folder or the object store: missing answers 404, an unreachable store 503.
    handle = stored_file_open(name=document.file.name)
    inline = document.file_type == "pdf" and handle.read(5) == b"%PDF-"
    handle.seek(0)
    response = FileResponse(
        handle,
        as_attachment=not inline,
        filename=stored_filename(document.original_name, document.file_type),
        content_type=_CONTENT_TYPES.get(document.file_type, "application/octet-stream"),
    )
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "sandbox"
    return response
