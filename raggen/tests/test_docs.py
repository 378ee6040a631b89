"""The documentation keeps up with the code: every environment variable is documented."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _settings_variables() -> set[str]:
    source = (ROOT / "raggen" / "settings.py").read_text(encoding="utf-8")
    return set(re.findall(r'env_\w+\(\s*"([A-Z][A-Z0-9_]+)"', source))


def test_every_environment_variable_is_in_env_example_and_the_readme():
    variables = _settings_variables()
    assert {"DEBUG", "REDIS_URL", "DATABASE_URL", "LOG_FORMAT"} <= variables
    example = (ROOT / ".env.example").read_text(encoding="utf-8")
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert sorted(v for v in variables if not re.search(rf"^{v}=", example, re.M)) == []
    assert sorted(v for v in variables if f"| `{v}`" not in readme) == []


def test_readme_opens_with_the_two_commands():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    first_block = readme.split("```")[1]
    assert "make run" in first_block and "make test" in first_block
