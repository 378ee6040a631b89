"""Typed, strict readers for environment variables.

Each reader raises :class:`EnvError` (an ``ImproperlyConfigured``) whose message is one line naming
the variable and what it accepts. Nothing outside ``settings.py`` reads ``os.environ``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlparse

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


class EnvError(ImproperlyConfigured):
    """An environment variable holds a value the application cannot use."""


def _raw(name: str) -> str | None:
    value = os.environ.get(name)
    return None if value is None else value.strip()


def env_str(name: str, default: str = "") -> str:
    """The variable's value, or ``default`` when unset."""
    value = _raw(name)
    return default if value is None else value


def env_bool(name: str, default: bool = False) -> bool:
    """A boolean: 1/true/yes/on or 0/false/no/off (any case); an empty value is false."""
    value = _raw(name)
    if value is None:
        return default
    lowered = value.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise EnvError(
        f"{name}={value!r} is not a boolean: use one of 1, true, yes, on, 0, false, no, off"
    )


def env_int(
    name: str, default: int, *, minimum: int | None = None, maximum: int | None = None
) -> int:
    """An integer, optionally within ``[minimum, maximum]``."""
    value = _raw(name)
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except ValueError:
        raise EnvError(f"{name}={value!r} is not an integer") from None
    if (minimum is not None and number < minimum) or (maximum is not None and number > maximum):
        low = "" if minimum is None else f" >= {minimum}"
        high = "" if maximum is None else f" <= {maximum}"
        raise EnvError(f"{name}={value!r} is out of range: use an integer{low}{high}")
    return number


def env_float(name: str, default: float, *, minimum: float | None = None) -> float:
    """A floating-point number, optionally at least ``minimum``."""
    value = _raw(name)
    if value is None or value == "":
        return default
    try:
        number = float(value)
    except ValueError:
        raise EnvError(f"{name}={value!r} is not a number") from None
    if minimum is not None and number < minimum:
        raise EnvError(f"{name}={value!r} is out of range: use a number >= {minimum}")
    return number


def env_choice(name: str, choices: Sequence[str], default: str) -> str:
    """One of ``choices`` (case-insensitive)."""
    value = _raw(name)
    if value is None or value == "":
        return default
    if value.lower() not in choices:
        raise EnvError(f"{name}={value!r} is not accepted: use one of {', '.join(choices)}")
    return value.lower()


def env_list(name: str, default: Sequence[str] = ()) -> list[str]:
    """A comma-separated list; blanks are dropped."""
    value = _raw(name)
    if value is None:
        return list(default)
    return [item.strip() for item in value.split(",") if item.strip()]


def env_path(name: str, default: Path) -> Path:
    """A filesystem path, made absolute."""
    value = _raw(name)
    return (Path(value) if value else default).expanduser().resolve()


def env_url(name: str, schemes: Sequence[str], default: str = "") -> str:
    """A URL whose scheme is one of ``schemes``; empty when unset."""
    value = _raw(name)
    if not value:
        return default
    parsed = urlparse(value)
    if parsed.scheme not in schemes or not (parsed.netloc or parsed.path):
        raise EnvError(
            f"{name}={value!r} is not a valid URL: use {' or '.join(s + '://…' for s in schemes)}"
        )
    return value


def env_secret(name: str, default: str = "") -> str:
    """A secret from ``NAME`` or, when that is unset, from the file named by ``NAME_FILE``."""
    value = _raw(name)
    if value:
        return value
    file_name = _raw(f"{name}_FILE")
    if not file_name:
        return default
    try:
        return Path(file_name).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise EnvError(f"{name}_FILE={file_name!r} cannot be read: {exc.strerror}") from None


@contextmanager
def exit_on_bad_environment() -> Iterator[None]:
    """Turn an :class:`EnvError` into one line on stderr and exit status 2."""
    try:
        yield
    except EnvError as exc:
        sys.stderr.write(f"raggen: configuration error: {exc}\n")
        raise SystemExit(2) from None
