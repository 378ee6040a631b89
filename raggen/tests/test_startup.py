"""Start-up as a user or operator sees it: real processes with a controlled environment."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run_manage(
    *args: str, env: dict[str, str], timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    base = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/tmp")}
    base.update(env)
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=base,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.mark.parametrize(
    "name,value,accepted",
    [
        ("REDIS_URL", "foo", "redis://"),
        ("DEBUG", "maybe", "1, true, yes, on, 0, false, no, off"),
        ("LOG_FORMAT", "xml", "text, json"),
        ("DATABASE_URL", "mysql://x", "postgres://"),
        ("UPLOAD_MAX_MB", "-3", ">= 1"),
        ("STORAGE_URL", "ftp://bucket", "s3://"),
        ("STORAGE_URL", "s3://bucket?regoin=x", "endpoint_url, region"),
        ("STORAGE_URL", "s3://AKIA:hush-hush@bucket", "AWS_ACCESS_KEY_ID"),
    ],
)
def test_invalid_environment_value_stops_startup_with_one_line(tmp_path, name, value, accepted):
    result = run_manage("check", env={name: value, "DATA_DIR": str(tmp_path)})
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert name in lines[0] and accepted in lines[0]
    assert "hush-hush" not in result.stderr  # a key put in a URL is not echoed


SHOW_SETTINGS = (
    "import json; from django.conf import settings as s; print(json.dumps({'debug': s.DEBUG,"
    " 'key': s.SECRET_KEY, 'hosts': s.ALLOWED_HOSTS, 'proxies': s.ALLAUTH_TRUSTED_PROXY_COUNT,"
    " 'secure_cookies': s.SESSION_COOKIE_SECURE}))"
)


def settings_of(env: dict[str, str]) -> dict[str, Any]:
    """The settings a fresh process gets from ``env`` (and nothing else)."""
    result = run_manage("shell", "-c", SHOW_SETTINGS, env=env)
    assert result.returncode == 0, result.stderr
    loaded: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return loaded


def test_no_environment_serves_with_debug_off_a_kept_key_and_local_hosts(tmp_path):
    first = settings_of({"DATA_DIR": str(tmp_path)})
    second = settings_of({"DATA_DIR": str(tmp_path)})

    assert first["debug"] is False
    assert first["hosts"] == ["localhost", "127.0.0.1", "[::1]"]
    assert first["secure_cookies"] is False  # plain HTTP on loopback: cookies must come back
    key_file = tmp_path / "secret_key"
    assert len(first["key"]) >= 50 and first["key"] == key_file.read_text().strip()
    assert second["key"] == first["key"]  # generated once, then reused
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".secret_key")] == []


def test_debug_true_stays_available_for_development(tmp_path):
    assert settings_of({"DATA_DIR": str(tmp_path), "DEBUG": "true"})["debug"] is True


def test_a_configured_secret_key_and_hosts_are_used_as_given(tmp_path):
    loaded = settings_of(
        {"DATA_DIR": str(tmp_path), "SECRET_KEY": "k" * 60, "ALLOWED_HOSTS": "raggen.example.com"}
    )

    assert loaded["key"] == "k" * 60 and not (tmp_path / "secret_key").exists()
    assert loaded["hosts"] == ["raggen.example.com"]
    assert loaded["secure_cookies"] is True  # a real host name: HTTPS-only cookies


@pytest.mark.parametrize("behind,count", [("true", 1), ("false", 0), (None, 0)])
def test_allauth_counts_the_proxy_only_behind_the_tls_proxy(tmp_path, behind, count):
    env = {"DATA_DIR": str(tmp_path)}
    if behind is not None:
        env["BEHIND_TLS_PROXY"] = behind
    assert settings_of(env)["proxies"] == count


RAISE_A_500 = """
from unittest import mock
from django.test import Client
with mock.patch("raggen.health.readiness", side_effect=RuntimeError("marker-7f3a in the stack")):
    response = Client(raise_request_exception=False).get("/readyz", HTTP_HOST="localhost")
print(response.status_code)
print(response.content.decode())
"""


def test_a_500_with_no_environment_shows_no_traceback_or_settings(tmp_path):
    result = run_manage("shell", "-v", "0", "-c", RAISE_A_500, env={"DATA_DIR": str(tmp_path)})

    assert result.returncode == 0, result.stderr
    status, _, page = result.stdout.partition("\n")
    assert status == "500"
    # Our page (raggen.server_errors), not Django's debug page.
    assert "Something went wrong" in page and "Error 500" in page
    for leak in ("marker-7f3a", "Traceback", "SECRET_KEY", "raggen/health.py"):
        assert leak not in page


# The production configuration that the README documents.
PRODUCTION_ENV = {
    "DEBUG": "false",
    "SECRET_KEY": "a-very-long-random-string-0123456789-abcdefghijklmnopqrstuvwxyz-ABCDEF",
    "ALLOWED_HOSTS": "raggen.example.com",
    "CSRF_TRUSTED_ORIGINS": "https://raggen.example.com",
    "SECURE_SSL_REDIRECT": "true",
    "SECURE_HSTS_SECONDS": "31536000",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS": "true",
    "SECURE_HSTS_PRELOAD": "true",
    "BEHIND_TLS_PROXY": "true",
}


def test_check_deploy_passes_clean_with_the_readme_production_settings(tmp_path):
    result = run_manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        env={**PRODUCTION_ENV, "DATA_DIR": str(tmp_path)},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_check_deploy_warns_on_debug_only_when_asked_for(tmp_path):
    default = run_manage("check", "--deploy", env={"DATA_DIR": str(tmp_path)})
    development = run_manage("check", "--deploy", env={"DATA_DIR": str(tmp_path), "DEBUG": "1"})
    assert "security.W018" not in default.stdout + default.stderr  # DEBUG off by default
    assert "security.W018" in development.stdout + development.stderr
