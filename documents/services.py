"""Write-side services for knowledge bases and documents. Views, the API, admin actions, tasks
and management commands call these; none of them reimplements what is here."""

from __future__ import annotations

import hashlib
import logging
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from core.background import enqueue_on_commit
from core.errors import Conflict, InvalidInput, NotFound, PayloadTooLarge
from documents.models import (
    Document,
    DocumentStatus,
    KnowledgeBase,
    KnowledgeBaseShare,
    ShareRole,
)
from documents.reasons import translate_reason

# document_delete lives in documents.removal (ingestion deletes replaced versions with it).
from documents.removal import document_delete as document_delete
from documents.retrieval import check_encoder, knowledge_base_index_delete
from documents.signals import sharing_changed
from documents.stored_files import stored_file_delete, stored_file_save
from documents.tasks import document_ingest_task

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser, User

logger = logging.getLogger(__name__)

#: Knowledge-base fields whose change means every document must be chunked again.
CHUNKING_FIELDS = frozenset({"split_rule", "max_chunk_tokens", "overlap_tokens", "heading_context"})
#: Fields whose change means every chunk must be embedded again (by the new encoder).
REINDEX_FIELDS = CHUNKING_FIELDS | {"encoder"}
EDITABLE_FIELDS = REINDEX_FIELDS | {
    "name",
    "description",
    "aggregation",
    "dense_weight",
    "keyword_weight",
}
_COPY_SIZE = 1024 * 1024


# --- knowledge bases ----------------------------------------------------------------------------


def _validate_options(options: dict[str, Any]) -> None:
    unknown = set(options) - EDITABLE_FIELDS
    if unknown:
        raise InvalidInput(
            _("Unknown knowledge base settings: %(names)s.") % {"names": ", ".join(sorted(unknown))}
        )
    max_tokens = options.get("max_chunk_tokens")
    if max_tokens is not None and not 16 <= int(max_tokens) <= 2048:
        raise InvalidInput(_("The maximum chunk size must be between 16 and 2048 tokens."))
    overlap = options.get("overlap_tokens")
    if overlap is not None and int(overlap) < 0:
        raise InvalidInput(_("The overlap cannot be negative."))
    for weight in ("dense_weight", "keyword_weight"):
        if weight in options and not 0 <= float(options[weight]) <= 10:
            raise InvalidInput(
                _("The dense weight must be between 0 and 10.")
                if weight == "dense_weight"
                else _("The keyword weight must be between 0 and 10.")
            )
    if "name" in options and not str(options["name"]).strip():
        raise InvalidInput(_("The name cannot be empty."))
    if "encoder" in options:
        check_encoder(choice=str(options["encoder"]))


def _check_overlap(kb: KnowledgeBase) -> None:
    if kb.overlap_tokens > kb.max_chunk_tokens // 2:
        raise InvalidInput(_("The overlap can be at most half of the maximum chunk size."))


def knowledge_base_create(*, owner: User, name: str, **options: Any) -> KnowledgeBase:
    """Create a knowledge base owned by ``owner``.

    Raises :class:`InvalidInput` for bad settings and :class:`Conflict` when the owner already
    has one with this name.
    """
    options = {key: value for key, value in options.items() if value is not None}
    options.setdefault("dense_weight", settings.HYBRID_DENSE_WEIGHT)
    options.setdefault("keyword_weight", settings.HYBRID_KEYWORD_WEIGHT)
    _validate_options({"name": name, **options})
    kb = KnowledgeBase(owner=owner, name=name.strip(), **options)
    _check_overlap(kb)
    try:
        with transaction.atomic():
            kb.save()
    except IntegrityError:
        raise Conflict(
            _("You already have a knowledge base named %(name)r.") % {"name": name}
        ) from None
    return kb


def knowledge_base_update(*, kb: KnowledgeBase, **changes: Any) -> bool:
    """Apply ``changes`` to ``kb``. When a chunking setting or the encoder changed, every
    document is reindexed in the background (search keeps answering from the old chunks
    meanwhile; a new encoder's vectors replace the old index at once, never mixed with it).

    Returns whether a reindex was started. Raises :class:`InvalidInput` or :class:`Conflict`.
    """
    if changes.get("encoder") == kb.encoder:
        del changes["encoder"]  # unchanged: no need for its provider to be configured now
    _validate_options(changes)
    changed = {k for k, v in changes.items() if getattr(kb, k) != v}
    for key in changed:
        setattr(kb, key, changes[key])
    if "encoder" in changed:
        kb.encoder_error = ""  # a new switch: the last one's failure no longer applies
    _check_overlap(kb)
    try:
        with transaction.atomic():
            kb.save()
    except IntegrityError:
        raise Conflict(
            _("You already have a knowledge base named %(name)r.") % {"name": kb.name}
        ) from None
    if changed & REINDEX_FIELDS:
        knowledge_base_reindex(kb=kb)
        return True
    return False


def knowledge_base_delete(*, kb: KnowledgeBase) -> None:
    """Delete ``kb`` with its documents, stored files, chunks and index files."""
    files = list(kb.documents.values_list("file", flat=True))
    kb_id = kb.pk
    kb.delete()
    _announce_access_change_on_commit(kb_id)
    knowledge_base_index_delete(kb_id=kb_id)
    for name in set(files):
        stored_file_delete(name=name)


def knowledge_base_reindex(*, kb: KnowledgeBase) -> int:
    """Reindex every current, indexed document of ``kb``; returns how many were queued."""
    count = 0
    for document in kb.documents.filter(is_current=True, status=DocumentStatus.INDEXED):
        try:
            document_reindex(document=document)
        except Conflict:  # replaced meanwhile by a version indexed now
            continue
        count += 1
    return count


# --- sharing ------------------------------------------------------------------------------------


def _find_user(identifier: str) -> Any:
    """The active user whose username or e-mail is ``identifier`` (case-insensitive), or
    ``None``."""
    identifier = identifier.strip()
    users = get_user_model().objects.filter(is_active=True)
    match = users.filter(username__iexact=identifier).first()
    if match is None and "@" in identifier:
        match = users.filter(email__iexact=identifier).order_by("pk").first()
    return match


def _check_role(role: str) -> None:
    if role not in ShareRole.values:
        raise InvalidInput(
            _("The role must be one of: %(roles)s.") % {"roles": ", ".join(ShareRole.values)}
        )


def knowledge_base_share(
    *, knowledge_base: KnowledgeBase, actor: Any, user: str, role: str
) -> KnowledgeBaseShare:
    """Give ``user`` (a user name or e-mail) ``role`` on ``knowledge_base``, or change their
    role. Raises :class:`InvalidInput` for an unknown user, the owner, or a bad role. For a
    name typed by the owner, :func:`knowledge_base_share_invite` answers without telling
    whether the user exists."""
    _check_role(role)
    target = _find_user(user)
    if target is None:
        raise InvalidInput(
            _("There is no active user %(name)r (give a user name or e-mail).")
            % {"name": user.strip()}
        )
    return _share_with(knowledge_base, actor, target, role)


def knowledge_base_share_invite(
    *, knowledge_base: KnowledgeBase, actor: Any, user: str, role: str
) -> str:
    """Share ``knowledge_base`` with ``user`` (a user name or e-mail) as ``role`` when such an
    active user exists, and do nothing otherwise. The returned message is the same either way,
    so that sharing cannot be used to find out who has an account. Raises
    :class:`InvalidInput` for a bad role or the owner's own name (which the owner knows)."""
    _check_role(role)
    target = _find_user(user)
    if target is not None:
        _share_with(knowledge_base, actor, target, role)
    return _(
        "If this user name or e-mail belongs to an active user, they can now use this "
        "knowledge base. The list of shares shows who has access."
    )


def _share_with(
    knowledge_base: KnowledgeBase, actor: Any, target: Any, role: str
) -> KnowledgeBaseShare:
    if target.pk == knowledge_base.owner_id:
        raise InvalidInput(_("The owner already has full access to this knowledge base."))
    with transaction.atomic():
        share, created = KnowledgeBaseShare.objects.select_for_update().get_or_create(
            knowledge_base=knowledge_base,
            user=target,
            defaults={"role": role, "created_by": actor if actor.is_authenticated else None},
        )
        before = None if created else share.role
        if not created and share.role != role:
            share.role = role
            share.save(update_fields=["role", "updated_at"])
    if before != role:
        sharing_changed.send(
            KnowledgeBase,
            knowledge_base=knowledge_base,
            actor=actor,
            user=target,
            before=before,
            after=role,
        )
    return share


def knowledge_base_unshare(*, knowledge_base: KnowledgeBase, actor: Any, share_id: int) -> None:
    """Withdraw share ``share_id`` of ``knowledge_base``. Conversations of that user keep their
    stored answers but no longer retrieve from it. Raises :class:`NotFound`."""
    share = (
        KnowledgeBaseShare.objects.select_related("user")
        .filter(pk=share_id, knowledge_base=knowledge_base)
        .first()
    )
    if share is None:
        raise NotFound(_("This knowledge base is not shared with that user."))
    share.delete()
    _announce_access_change_on_commit(knowledge_base.pk)
    sharing_changed.send(
        KnowledgeBase,
        knowledge_base=knowledge_base,
        actor=actor,
        user=share.user,
        before=share.role,
        after=None,
    )


def _announce_access_change_on_commit(kb_id: int) -> None:
    """Open progress sockets of ``kb_id`` check their user's access again (and close if it is
    gone) once the change is committed."""
    from documents.progress import ProgressManager

    transaction.on_commit(lambda: ProgressManager(kb_id).access_changed())


# --- uploads ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class UploadResult:
    """One uploaded file's outcome: a new document, or the existing one it duplicates."""

    name: str
    document: Document
    duplicate: bool


def _spool(chunks: Iterable[bytes], limit: int, name: str) -> tuple[Path, str, int]:
    """Copy the upload to a temporary file, hashing it; refuse it past ``limit`` bytes."""
    digest = hashlib.sha256()
    size = 0
    handle = tempfile.NamedTemporaryFile(prefix="raggen-upload-", delete=False)  # noqa: SIM115
    path = Path(handle.name)
    try:
        with handle:
            for piece in chunks:
                size += len(piece)
                if size > limit:
                    raise PayloadTooLarge(
                        _("%(name)s is larger than the %(limit)s MB limit.")
                        % {"name": name, "limit": limit // (1024 * 1024)},
                        {"file": name, "limit_bytes": limit},
                    )
                digest.update(piece)
                handle.write(piece)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path, digest.hexdigest(), size


def document_upload(
    *,
    knowledge_base: KnowledgeBase,
    user: User | AnonymousUser | None,
    name: str,
    chunks: Iterable[bytes],
    title: str = "",
    replaces: Document | None = None,
    queue: bool = True,
) -> UploadResult:
    """Store an uploaded file in ``knowledge_base`` and queue its ingestion.

    The type comes from the content, not the name. A file whose sha256 is already in the
    knowledge base is not stored again: the result names the existing document
    (``duplicate=True``). With ``replaces`` the file becomes a new version of that document:
    the old version stays searchable until the new one is indexed, then they swap. With
    ``queue=False`` the caller runs ``ingestion.document_ingest`` itself (the ``ingest`` command).

    Raises :class:`PayloadTooLarge` past ``UPLOAD_MAX_BYTES`` and :class:`InvalidInput` for an
    empty file or a type RAGGEN cannot read.
    """
    from documents.detect import (
        detect_type,
        sanitize_filename,
        stored_filename,
        title_from_filename,
    )
    from documents.readers import UnreadableDocument

    safe_name = sanitize_filename(name)
    path, sha256, size = _spool(chunks, settings.UPLOAD_MAX_BYTES, safe_name)
    try:
        if size == 0:
            raise InvalidInput(_("%(name)s is empty.") % {"name": safe_name}, {"file": safe_name})
        try:
            file_type = detect_type(path, safe_name)
        except UnreadableDocument as exc:
            raise InvalidInput(
                f"{safe_name}: {translate_reason(exc.reason)}", {"file": safe_name}
            ) from None
        existing = _find_duplicate(knowledge_base, sha256)
        if existing is not None:
            return UploadResult(safe_name, existing, duplicate=True)
        document = _create_document(
            knowledge_base,
            user,
            _StoredName(safe_name, stored_filename(safe_name, file_type)),
            title or (replaces.title if replaces is not None else title_from_filename(name)),
            file_type,
            sha256,
            size,
            path,
            replaces,
            queue,
        )
    finally:
        path.unlink(missing_ok=True)
    return UploadResult(safe_name, document, duplicate=False)


@dataclass(frozen=True)
class _StoredName:
    original: str  # sanitized, shown to users
    stored: str  # the same stem with the detected type's extension, bounded in bytes


def _find_duplicate(knowledge_base: KnowledgeBase, sha256: str) -> Document | None:
    return (
        Document.objects.filter(knowledge_base=knowledge_base, sha256=sha256)
        .exclude(status=DocumentStatus.FAILED)
        .order_by("-is_current", "-id")
        .first()
    )


def _create_document(
    knowledge_base: KnowledgeBase,
    user: User | AnonymousUser | None,
    name: _StoredName,
    title: str,
    file_type: str,
    sha256: str,
    size: int,
    path: Path,
    replaces: Document | None,
    queue: bool,
) -> Document:
    with transaction.atomic():
        if replaces is not None and replaces.knowledge_base_id != knowledge_base.pk:
            raise InvalidInput(_("A new version must go into the same knowledge base."))
        document = Document(
            knowledge_base=knowledge_base,
            title=title[:500],
            original_name=name.original,
            file_type=file_type,
            size=size,
            sha256=sha256,
            uploaded_by=user if isinstance(user, get_user_model()) else None,
            replaces=replaces,
            version=(replaces.version + 1) if replaces is not None else 1,
            is_current=replaces is None,
        )
        with path.open("rb") as handle:
            document.file.name = stored_file_save(
                name=document.file.field.generate_filename(document, name.stored), content=handle
            )
        try:
            document.save()
        except BaseException:
            stored_file_delete(name=document.file.name)
            raise
        transaction.on_commit(lambda: _announce(document))
        if queue:
            enqueue_on_commit(document_ingest_task, document.pk)
    return document


def _announce(document: Document) -> None:
    from documents.progress import ProgressManager

    ProgressManager(document.knowledge_base_id).send(document.pk, document.status, 0)


# --- management ---------------------------------------------------------------------------------


def document_reindex(*, document: Document) -> Document:
    """Chunk and index ``document`` again (after a settings change) without a gap in search:
    a new version row over the same stored file is built, then swapped in."""
    if not document.is_current:
        raise Conflict(_("Only the current version of a document can be reindexed."))
    if document.status != DocumentStatus.INDEXED:
        return document_retry(document=document)
    with transaction.atomic():
        # A new version may have been swapped in (and this one deleted) since it was read: the
        # new row would then name a missing document (a 500 at commit).
        current = Document.objects.select_for_update().filter(pk=document.pk, is_current=True)
        if current.first() is None:
            raise Conflict(_("A newer version of this document was just indexed."))
        fresh = Document.objects.create(
            knowledge_base_id=document.knowledge_base_id,
            title=document.title,
            original_name=document.original_name,
            file=document.file.name,
            file_type=document.file_type,
            size=document.size,
            sha256=document.sha256,
            uploaded_by=document.uploaded_by,
            replaces=document,
            version=document.version,
            is_current=False,
        )
        enqueue_on_commit(document_ingest_task, fresh.pk)
    return fresh


def document_retry(*, document: Document) -> Document:
    """Queue a failed (or stuck) document for ingestion again. An attempt still at work on
    it (a stuck one) loses the document: its writes are dropped from now on."""
    with transaction.atomic():
        Document.objects.filter(pk=document.pk).update(
            status=DocumentStatus.QUEUED,
            progress=0,
            failure_reason="",
            attempts=0,
            ingest_run=F("ingest_run") + 1,
            heartbeat_at=None,
            updated_at=timezone.now(),
        )
        enqueue_on_commit(document_ingest_task, document.pk)
    document.refresh_from_db()
    return document
