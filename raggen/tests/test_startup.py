"""Start-up as a user or operator sees it: real processes with a controlled environment."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

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
    ],
)
def test_invalid_environment_value_stops_startup_with_one_line(tmp_path, name, value, accepted):
    result = run_manage("check", env={name: value, "DATA_DIR": str(tmp_path)})
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert name in lines[0] and accepted in lines[0]


def test_debug_off_refuses_to_start_without_secret_key(tmp_path):
    result = run_manage(
        "check", env={"DEBUG": "false", "ALLOWED_HOSTS": "x", "DATA_DIR": str(tmp_path)}
    )
    assert result.returncode == 2
    assert "SECRET_KEY is required when DEBUG is off" in result.stderr


def test_debug_off_refuses_to_start_without_allowed_hosts(tmp_path):
    result = run_manage(
        "check", env={"DEBUG": "0", "SECRET_KEY": "k" * 60, "DATA_DIR": str(tmp_path)}
    )
    assert result.returncode == 2
    assert "ALLOWED_HOSTS is required" in result.stderr


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


def test_check_deploy_warns_on_development_defaults(tmp_path):
    result = run_manage("check", "--deploy", env={"DATA_DIR": str(tmp_path)})
    assert "security.W018" in result.stdout + result.stderr  # DEBUG on
