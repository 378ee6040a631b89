from __future__ import annotations

from pathlib import Path

import pytest

from raggen import env
from raggen.env import EnvError


@pytest.mark.parametrize(
    "raw,expected",
    [("1", True), ("TRUE", True), ("on", True), ("0", False), ("no", False), ("", False)],
)
def test_env_bool_reads_common_spellings(monkeypatch, raw, expected):
    monkeypatch.setenv("FLAG", raw)
    assert env.env_bool("FLAG", not expected) is expected


def test_env_bool_rejects_maybe_naming_the_variable(monkeypatch):
    monkeypatch.setenv("DEBUG", "maybe")
    with pytest.raises(EnvError, match=r"DEBUG='maybe' is not a boolean"):
        env.env_bool("DEBUG")


def test_env_bool_default_applies_when_unset(monkeypatch):
    monkeypatch.delenv("FLAG", raising=False)
    assert env.env_bool("FLAG", True) is True


def test_env_int_enforces_range(monkeypatch):
    monkeypatch.setenv("N", "0")
    with pytest.raises(EnvError, match=r"N='0' is out of range: use an integer >= 1"):
        env.env_int("N", 5, minimum=1)
    monkeypatch.setenv("N", "seven")
    with pytest.raises(EnvError, match="is not an integer"):
        env.env_int("N", 5)
    monkeypatch.setenv("N", "12")
    assert env.env_int("N", 5, minimum=1) == 12


def test_env_url_rejects_a_url_of_the_wrong_scheme(monkeypatch):
    monkeypatch.setenv("REDIS_URL", "foo")
    with pytest.raises(EnvError, match=r"REDIS_URL='foo' is not a valid URL: use redis://"):
        env.env_url("REDIS_URL", ("redis", "rediss"))
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:6379/0")
    assert env.env_url("REDIS_URL", ("redis",)) == "redis://127.0.0.1:6379/0"


def test_env_choice_lists_accepted_values(monkeypatch):
    monkeypatch.setenv("LOG_FORMAT", "xml")
    with pytest.raises(EnvError, match="use one of text, json"):
        env.env_choice("LOG_FORMAT", ("text", "json"), "text")
    monkeypatch.setenv("LOG_FORMAT", "JSON")
    assert env.env_choice("LOG_FORMAT", ("text", "json"), "text") == "json"


def test_env_secret_reads_the_file_variant(monkeypatch, tmp_path: Path):
    secret_file = tmp_path / "key"
    secret_file.write_text("s3cret\n", encoding="utf-8")
    monkeypatch.delenv("API_KEY", raising=False)
    monkeypatch.setenv("API_KEY_FILE", str(secret_file))
    assert env.env_secret("API_KEY") == "s3cret"
    monkeypatch.setenv("API_KEY", "direct")
    assert env.env_secret("API_KEY") == "direct"


def test_env_secret_names_an_unreadable_file(monkeypatch, tmp_path: Path):
    monkeypatch.delenv("API_KEY", raising=False)
    monkeypatch.setenv("API_KEY_FILE", str(tmp_path / "missing"))
    with pytest.raises(EnvError, match=r"API_KEY_FILE=.* cannot be read"):
        env.env_secret("API_KEY")


def test_env_list_drops_blanks(monkeypatch):
    monkeypatch.setenv("HOSTS", " a.example, ,b.example ")
    assert env.env_list("HOSTS") == ["a.example", "b.example"]
