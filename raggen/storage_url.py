"""``STORAGE_URL``: where uploaded files are stored, as the ``default`` entry of Django's
``STORAGES`` (docs/STORAGE.md).

Unset: the local media folder (``MEDIA_ROOT``, by default ``DATA_DIR/media``). Set to an S3
address, uploads go to an S3-compatible object store through django-storages::

    s3://BUCKET[/PREFIX]?endpoint_url=http://minio:9000&region=us-east-1&addressing_style=path

- ``BUCKET``: the bucket (it must exist); ``PREFIX``: an optional key prefix (folder) inside it.
- ``endpoint_url``: the S3 API of MinIO, Ceph, Yandex Object Storage... (empty: AWS itself).
- ``region``: the region to sign requests for; ``addressing_style``: ``path`` (MinIO's default)
  or ``virtual``; ``verify``: ``false`` accepts an endpoint's self-signed certificate.

The keys are never in the URL (a URL ends up in logs and process listings): they come from
boto3's usual places, ``AWS_ACCESS_KEY_ID`` and ``AWS_SECRET_ACCESS_KEY`` (and
``AWS_SESSION_TOKEN``) in the environment, a shared credentials file, or the role of the machine
or pod.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlsplit

from raggen.env import EnvError

_OPTIONS = {"endpoint_url", "region", "addressing_style", "verify"}
#: A connection attempt gives up after this many seconds, a read that stalls after the second
#: figure; three attempts in all (an unreachable store answers the user within seconds).
CONNECT_TIMEOUT = 5
READ_TIMEOUT = 60
#: Downloads larger than this spill from memory to a temporary file (deleted when closed).
SPOOL_BYTES = 5 * 1024 * 1024


def default_storage_from_url(url: str) -> dict[str, Any]:
    """The ``STORAGES["default"]`` entry for ``STORAGE_URL`` (the local folder when empty)."""
    if not url:
        return {"BACKEND": "django.core.files.storage.FileSystemStorage"}
    parts = urlsplit(url)
    if parts.scheme != "s3" or not parts.hostname:
        raise EnvError("STORAGE_URL is not accepted: use s3://BUCKET[/PREFIX]?…")
    if parts.username or parts.password:
        raise EnvError(
            "STORAGE_URL must not hold keys: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
        )
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    unknown = sorted(set(query) - _OPTIONS)
    if unknown:
        raise EnvError(
            f"STORAGE_URL has unknown options {', '.join(unknown)}: use "
            f"{', '.join(sorted(_OPTIONS))}"
        )
    style = query.get("addressing_style") or None
    if style not in (None, "path", "virtual"):
        raise EnvError(f"STORAGE_URL addressing_style={style!r}: use path or virtual")
    verify = query.get("verify", "true").lower()
    if verify not in ("true", "false"):
        raise EnvError(f"STORAGE_URL verify={verify!r}: use true or false")
    # Here, not at the top: botocore's config pulls in most of botocore (0.1-0.3 s), which a
    # process on the local folder never needs.
    from botocore.config import Config

    return {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": parts.hostname,
            "location": parts.path.strip("/"),
            "endpoint_url": query.get("endpoint_url") or None,
            "region_name": query.get("region") or None,
            "verify": verify == "true",
            # Like the local folder: a name already taken gets a suffix, nothing is overwritten.
            "file_overwrite": False,
            # Objects stay private (no ACL header: the bucket's policy applies); RAGGEN serves
            # every download itself, with its own type and headers, never by a bucket URL.
            "default_acl": None,
            "querystring_auth": True,
            "max_memory_size": SPOOL_BYTES,
            "client_config": Config(
                connect_timeout=CONNECT_TIMEOUT,
                read_timeout=READ_TIMEOUT,
                retries={"total_max_attempts": 3, "mode": "standard"},
                signature_version="s3v4",
                s3={"addressing_style": style} if style else None,
            ),
        },
    }
