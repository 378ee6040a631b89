"""``STORAGE_URL`` becomes the ``default`` entry of ``STORAGES`` (raggen.storage_url)."""

from __future__ import annotations

import pytest

from raggen.checks import shared_state_check
from raggen.env import EnvError
from raggen.storage_url import default_storage_from_url


def test_unset_is_the_local_media_folder():
    assert default_storage_from_url("") == {
        "BACKEND": "django.core.files.storage.FileSystemStorage"
    }


def test_an_s3_url_names_bucket_prefix_endpoint_region_and_addressing():
    entry = default_storage_from_url(
        "s3://raggen/uploads/eu/?endpoint_url=http://minio:9000&region=ru-central1"
        "&addressing_style=path&verify=false"
    )
    assert entry["BACKEND"] == "storages.backends.s3.S3Storage"
    options = entry["OPTIONS"]
    assert (options["bucket_name"], options["location"]) == ("raggen", "uploads/eu")
    assert options["endpoint_url"] == "http://minio:9000"
    assert options["region_name"] == "ru-central1"
    assert options["verify"] is False
    assert options["file_overwrite"] is False and options["default_acl"] is None
    config = options["client_config"]
    assert config.s3 == {"addressing_style": "path"}
    assert (config.connect_timeout, config.read_timeout) == (5, 60)
    assert "access_key" not in options and "secret_key" not in options  # boto3's chain


def test_a_bare_bucket_takes_aws_defaults():
    options = default_storage_from_url("s3://raggen")["OPTIONS"]
    assert options["location"] == "" and options["endpoint_url"] is None
    assert options["region_name"] is None and options["verify"] is True
    assert options["client_config"].s3 is None


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("s3:///uploads", "use s3://BUCKET"),
        ("s3://key:secret@raggen", "must not hold keys"),
        ("s3://raggen?addressing_style=sideways", "use path or virtual"),
        ("s3://raggen?verify=maybe", "use true or false"),
        ("s3://raggen?access_key=x", "unknown options access_key"),
    ],
)
def test_a_bad_url_is_refused_naming_what_is_accepted(url, message):
    with pytest.raises(EnvError, match=message) as caught:
        default_storage_from_url(url)
    assert "secret" not in str(caught.value)


def test_with_storage_url_per_host_state_is_warned_about(settings, tmp_path):
    settings.DATA_DIR = tmp_path
    (tmp_path / "secret_key").write_text("generated-here\n", encoding="utf-8")
    settings.SECRET_KEY = "generated-here"
    settings.REDIS_URL = ""
    assert shared_state_check() == []  # one machine: nothing to say

    settings.STORAGE_URL = "s3://raggen"
    ids = {w.id for w in shared_state_check()}
    sqlite = settings.DATABASES["default"]["ENGINE"].endswith("sqlite3")
    assert ids == {"raggen.W001", "raggen.W003"} | ({"raggen.W002"} if sqlite else set())

    settings.SECRET_KEY = "set-for-every-host"
    settings.REDIS_URL = "redis://redis:6379/0"
    assert {w.id for w in shared_state_check()} == ({"raggen.W002"} if sqlite else set())
