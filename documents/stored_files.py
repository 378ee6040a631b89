"""The stored originals of documents, through Django's storage API only (``STORAGES["default"]``:
the local media folder, or an S3-compatible object store with ``STORAGE_URL``; docs/STORAGE.md).

Nothing else in RAGGEN opens an upload by its path. Saving, opening, copying and deleting go
through here, and the store's failures come out as our errors with a reason a user can read:
:class:`StoredFileMissing` (the object is gone), :class:`StoredFileDamaged` (it is not what was
uploaded) and :class:`StorageUnavailable` (the store cannot be reached; worth retrying), never a
botocore traceback.
"""

from __future__ import annotations

import hashlib
import logging
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import IO, Any

from botocore.exceptions import BotoCoreError, ClientError
from django.core.files import File
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.utils.translation import gettext, gettext_noop

from core.errors import ApplicationError, NotFound

logger = logging.getLogger(__name__)

#: Failure reasons, stored in English and translated when shown (``documents.reasons``).
MISSING = gettext_noop(
    "The original file of this document is missing from the file store; upload it again."
)
DAMAGED = gettext_noop(
    "The original file of this document in the file store is not the one that was uploaded "
    "(damaged or replaced); upload it again."
)
UNAVAILABLE = gettext_noop("The file store cannot be reached right now; try again later.")
TOO_SLOW = gettext_noop(
    "Fetching the original file from the file store took longer than %(count)s seconds; "
    "try again later."
)
_PIECE = 1024 * 1024


class StoredFileMissing(NotFound):
    def __init__(self) -> None:
        super().__init__(gettext(MISSING))


class StoredFileDamaged(ApplicationError):
    def __init__(self) -> None:
        super().__init__(gettext(DAMAGED))


class StorageUnavailable(ApplicationError):
    """The store did not answer (or answered with an error of its own): try again later."""

    retryable = True

    def __init__(self, message: str = "") -> None:
        super().__init__(message or gettext(UNAVAILABLE))


def _is_not_found(exc: ClientError) -> bool:
    error = exc.response.get("Error", {})
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return status == 404 or error.get("Code") in {"NoSuchKey", "NotFound", "404"}


@contextmanager
def _translated(name: str) -> Iterator[None]:
    """The store's failures on ``name`` as our errors (logged with their detail)."""
    try:
        yield
    except FileNotFoundError:
        raise StoredFileMissing from None
    except ClientError as exc:
        if _is_not_found(exc):
            raise StoredFileMissing from None
        logger.warning("file store refused %s: %s", name, exc)
        raise StorageUnavailable from None
    except BotoCoreError as exc:
        logger.warning("file store unreachable for %s: %s", name, exc)
        raise StorageUnavailable from None


def stored_file_save(*, name: str, content: IO[bytes]) -> str:
    """Store ``content`` under ``name`` (or a free variant of it); returns the name used."""
    with _translated(name):
        return default_storage.save(name, File(content))


def stored_file_open(*, name: str) -> File[Any]:
    """Open the stored file ``name`` for reading, fetched whole before this returns (from an
    object store into memory, or a temporary file past 5 MB), so that a missing object or an
    unreachable store is one of our errors here and not halfway through a response."""
    if not name:
        raise StoredFileMissing
    with _translated(name):
        handle = default_storage.open(name, "rb")
        try:
            handle.seek(0)  # an object store's file downloads on first access
        except BaseException:
            handle.close()
            raise
    return handle


def stored_file_delete(*, name: str) -> None:
    """Delete a stored upload; no name (texts added through the vector API), a missing file or
    a failing store is not an error (logged: the file may stay behind)."""
    if not name:
        return
    try:
        with _translated(name):
            default_storage.delete(name)
    except (ApplicationError, OSError):
        logger.warning("could not delete stored file %s", name)


def _local_path(name: str) -> Path | None:
    try:
        return Path(default_storage.path(name))
    except NotImplementedError:  # an object store has no local path
        return None


@contextmanager
def stored_file_local_copy(
    *, name: str, sha256: str, max_bytes: int, timeout: float
) -> Iterator[Path]:
    """A real file with the content of the stored file ``name``, for readers that need a path.

    The local folder's own file is used as is. From an object store the object is streamed into
    a private temporary file (the system's temporary folder, never ``DATA_DIR``), refused past
    ``max_bytes`` or ``timeout`` seconds, checked against ``sha256``, and deleted when the block
    ends, whatever happens in it.
    """
    if not name:
        raise StoredFileMissing
    local = _local_path(name)
    if local is not None:
        if not local.is_file():
            raise StoredFileMissing
        yield local
        return
    handle = tempfile.NamedTemporaryFile(  # noqa: SIM115 (closed below, deleted in finally)
        prefix="raggen-stored-", suffix=PurePosixPath(name).suffix, delete=False
    )
    path = Path(handle.name)
    try:
        with handle:
            _copy(name, handle, sha256=sha256, max_bytes=max_bytes, timeout=timeout)
        yield path
    finally:
        path.unlink(missing_ok=True)


def _copy(name: str, target: IO[bytes], *, sha256: str, max_bytes: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    digest = hashlib.sha256()
    size = 0
    with _translated(name):
        source = default_storage.open(name, "rb")
        try:
            for piece in _pieces(source, max_bytes):
                size += len(piece)
                if size > max_bytes:
                    raise StoredFileDamaged
                if time.monotonic() > deadline:
                    raise StorageUnavailable(gettext(TOO_SLOW) % {"count": int(timeout)})
                digest.update(piece)
                target.write(piece)
        finally:
            source.close()
    if sha256 and digest.hexdigest() != sha256:
        raise StoredFileDamaged


def _pieces(source: Any, max_bytes: int) -> Iterator[bytes]:
    """The bytes of an open stored file. An object store's (django-storages' ``S3File``, which
    has already looked the object up) stream from the object without a second local copy."""
    obj = getattr(source, "obj", None)
    if obj is None:
        yield from source.chunks(_PIECE)
        return
    if obj.content_length > max_bytes:
        raise StoredFileDamaged
    body = obj.get()["Body"]
    try:
        yield from body.iter_chunks(_PIECE)
    finally:
        body.close()


def storage_check() -> None:
    """Readiness: the store accepts a write, a read and a delete (raises when it does not)."""
    name = default_storage.save(".readyz/probe", ContentFile(b""))
    try:
        with default_storage.open(name, "rb") as handle:
            handle.read()
    finally:
        default_storage.delete(name)
