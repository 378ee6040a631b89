"""docker-compose.yml: checked by the real compose tool (its own schema, interpolation and service
references), then its properties read from the YAML: a scalable worker, health checks, the
settings of a multi-host deployment, and no secret written into the file."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = pytest.mark.deploy

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
ENV_TEMPLATE = ROOT / "deploy" / "compose.env.example"

#: Variables that compose must refuse to start without (no default in the file).
REQUIRED_SECRETS = {
    "SECRET_KEY",
    "POSTGRES_PASSWORD",
    "MINIO_ROOT_USER",
    "MINIO_ROOT_PASSWORD",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
}
#: Read from the environment by a library rather than by raggen/settings.py (boto3), or by the
#: storage point of issue 17 (STORAGE_URL).
NOT_IN_SETTINGS = {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}  # read by boto3
SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|_KEY|CREDENTIALS|ROOT_USER")
#: A value taken from the environment, with no default or an empty one.
FROM_ENVIRONMENT = re.compile(r"^\$\{[A-Z][A-Z0-9_]*(:\?[^}]*|:-)\}$")
APP_SERVICES = ("web", "worker", "migrate")


def _compose_command() -> list[str]:
    """The real compose tool: the Docker CLI's plugin when it has one, else Debian's (or PyPI's)
    docker-compose. Missing: skipped on a developer's machine, a failure in CI (.ci/run installs
    Debian's docker-compose)."""
    docker = shutil.which("docker")
    if (
        docker
        and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0
    ):
        return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    if legacy:
        return [legacy]
    message = "no compose tool: apt-get install docker-compose"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def _env_file(tmp_path: Path, *, leave_out: str = "") -> Path:
    """The template with a placeholder in each required secret (``leave_out`` stays empty)."""
    lines = []
    for line in ENV_TEMPLATE.read_text(encoding="utf-8").splitlines():
        name, sep, value = line.partition("=")
        if sep and name in REQUIRED_SECRETS and name != leave_out:
            value = f"placeholder-{name.lower().replace('_', '-')}"
        lines.append(f"{name}{sep}{value}")
    path = tmp_path / "compose.env"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _config(env_file: Path) -> subprocess.CompletedProcess[str]:
    # A clean environment: only the env file sets the project's variables.
    clean = {key: os.environ[key] for key in ("PATH", "HOME") if key in os.environ}
    return subprocess.run(
        [*_compose_command(), "-f", str(COMPOSE_FILE), "--env-file", str(env_file), "config"],
        capture_output=True,
        text=True,
        env=clean,
        cwd=ROOT,
        timeout=60,
    )


@pytest.fixture(scope="module")
def raw() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    return data


@pytest.fixture(scope="module")
def resolved(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The configuration as the compose tool resolves it (anchors merged, variables put in)."""
    result = _config(_env_file(tmp_path_factory.mktemp("compose")))
    assert result.returncode == 0, result.stderr
    data: dict[str, Any] = yaml.safe_load(result.stdout)
    return data


def _settings_variables() -> set[str]:
    source = (ROOT / "raggen" / "settings.py").read_text(encoding="utf-8")
    return set(re.findall(r'env_\w+\(\s*"([A-Z][A-Z0-9_]+)"', source))


def test_compose_tool_accepts_the_file_and_resolves_secrets_from_the_env_file(resolved):
    web = resolved["services"]["web"]["environment"]
    assert web["SECRET_KEY"] == "placeholder-secret-key"
    assert web["DATABASE_URL"] == (
        "postgresql://raggen:placeholder-postgres-password@postgres:5432/raggen"
    )
    assert web["AWS_SECRET_ACCESS_KEY"] == "placeholder-aws-secret-access-key"
    minio = resolved["services"]["minio"]["environment"]
    assert minio["MINIO_ROOT_PASSWORD"] == "placeholder-minio-root-password"


@pytest.mark.parametrize("secret", sorted(REQUIRED_SECRETS))
def test_compose_refuses_to_start_without_each_secret(tmp_path, secret):
    result = _config(_env_file(tmp_path, leave_out=secret))
    assert result.returncode != 0
    assert secret in result.stderr


def test_compose_tool_rejects_an_unknown_option(tmp_path):
    """The check bites: a misspelt option fails, so a passing file is a valid one."""
    broken = COMPOSE_FILE.read_text(encoding="utf-8").replace(
        "    healthcheck:", "    helthcheck:", 1
    )
    copy = tmp_path / "docker-compose.yml"
    copy.write_text(broken, encoding="utf-8")
    clean = {key: os.environ[key] for key in ("PATH", "HOME") if key in os.environ}
    command = [*_compose_command(), "-f", str(copy), "--env-file", str(_env_file(tmp_path))]
    result = subprocess.run(
        [*command, "config"], capture_output=True, text=True, env=clean, cwd=tmp_path, timeout=60
    )
    assert result.returncode != 0
    assert "helthcheck" in result.stderr


def test_services_and_images(resolved):
    services = resolved["services"]
    assert set(services) == {"web", "worker", "migrate", "postgres", "redis", "minio", "minio-init"}
    assert services["postgres"]["image"] == "pgvector/pgvector:pg17"
    assert services["minio-init"]["image"].startswith("minio/mc")
    assert services["minio"]["image"].startswith("minio/minio")
    images = {services[name]["image"] for name in APP_SERVICES}
    assert len(images) == 1, "web, worker and migrate run one image"


def test_worker_scales(resolved):
    worker = resolved["services"]["worker"]
    for fixed in ("container_name", "ports", "hostname"):
        assert fixed not in worker, f"{fixed} would stop --scale worker=N"
    assert "celery -A raggen worker" in " ".join(worker["command"])
    # Each copy names its Celery node after its own container.
    assert "%h" in " ".join(worker["command"])
    assert worker["stop_grace_period"] == "5m"


def test_health_checks(resolved):
    services = resolved["services"]
    assert "/readyz" in " ".join(services["web"]["healthcheck"]["test"])
    assert "inspect ping" in " ".join(services["worker"]["healthcheck"]["test"])
    for name in ("postgres", "redis", "minio"):
        assert services[name]["healthcheck"]["test"][0] in {"CMD", "CMD-SHELL"}, name


def test_startup_order(resolved):
    services = resolved["services"]
    for name in ("web", "worker"):
        depends = services[name]["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully"
        assert depends["minio-init"]["condition"] == "service_completed_successfully"
        for store in ("postgres", "redis", "minio"):
            assert depends[store]["condition"] == "service_healthy"
    assert services["migrate"]["restart"] == "no"
    assert services["minio-init"]["restart"] == "no"
    assert "migrate --noinput" in " ".join(services["migrate"]["command"])


def test_multi_host_settings(resolved):
    for name in APP_SERVICES:
        env = resolved["services"][name]["environment"]
        assert env["SEARCH_BACKEND"] == "postgres"
        assert env["STORAGE_URL"] == "s3://raggen/media?endpoint_url=http://minio:9000"
        assert env["DATABASE_URL"].endswith("@postgres:5432/raggen")
        assert env["REDIS_URL"] == "redis://redis:6379/0"
        assert {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "SECRET_KEY"} <= set(env)
    known = _settings_variables() | NOT_IN_SETTINGS
    env = resolved["services"]["web"]["environment"]
    assert sorted(set(env) - known) == [], "a variable that no setting reads"


def test_no_secret_is_written_in_the_file(raw):
    """Every secret-like value is a ${VARIABLE} with no default (or an empty one), and the
    database password inside DATABASE_URL too."""
    environments: list[dict[str, str]] = [raw["x-raggen-env"]]
    for service in raw["services"].values():
        env = service.get("environment")
        if isinstance(env, dict):
            environments.append(env)
    checked = set()
    for env in environments:
        for name, value in env.items():
            if SECRET_NAME.search(name):
                assert FROM_ENVIRONMENT.match(str(value)), f"{name}: {value!r}"
                checked.add(name)
    assert REQUIRED_SECRETS | {"OPENAI_API_KEY", "ADMIN_PASSWORD"} <= checked
    database_url = raw["x-raggen-env"]["DATABASE_URL"]
    password = re.match(r"postgresql://raggen:(.*)@postgres:5432/raggen$", database_url)
    assert password and FROM_ENVIRONMENT.match(password.group(1))


def test_env_template_names_every_variable_of_the_file_with_no_value():
    variables = set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)", COMPOSE_FILE.read_text(encoding="utf-8")))
    template = dict(
        line.split("=", 1)
        for line in ENV_TEMPLATE.read_text(encoding="utf-8").splitlines()
        if line and not line.startswith("#")
    )
    # Images and host ports keep their defaults unless overridden.
    optional = {"RAGGEN_IMAGE", "MINIO_IMAGE", "MC_IMAGE", "WEB_PORT", "MINIO_API_PORT"}
    optional |= {"MINIO_CONSOLE_PORT", "SECURE_COOKIES", "BEHIND_TLS_PROXY"}
    optional |= {"ADMIN_USERNAME", "ADMIN_EMAIL"}
    assert sorted(variables - set(template) - optional) == []
    for name in REQUIRED_SECRETS:
        assert template[name] == "", f"{name} has a value in the template"


def test_the_env_file_stays_out_of_the_image_and_the_repository():
    """The Dockerfile copies the whole folder: .env (the compose secrets) must not go with it."""
    dockerignore = (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
    assert {".env", ".venv", "data", ".git"} <= set(dockerignore)
    assert ".env" in (ROOT / ".gitignore").read_text(encoding="utf-8").splitlines()


def _shell_scripts(service: dict[str, Any]) -> list[str]:
    """What the service hands to a shell: ``sh -c SCRIPT`` commands and CMD-SHELL checks."""
    scripts = []
    entrypoint = service.get("entrypoint") or []
    command = service.get("command") or []
    if entrypoint[-2:] == ["/bin/sh", "-c"] or entrypoint[-2:] == ["sh", "-c"]:
        scripts.append(" ".join(command))
    elif command[:2] in (["sh", "-c"], ["/bin/sh", "-c"]):
        scripts.append(command[2])
    test = service.get("healthcheck", {}).get("test") or []
    if test[:1] == ["CMD-SHELL"]:
        scripts.append(test[1])
    return [script.replace("$$", "$") for script in scripts]


def test_every_shell_script_parses(resolved):
    scripts = [s for service in resolved["services"].values() for s in _shell_scripts(service)]
    assert len(scripts) >= 4  # minio-init, migrate, worker and its health check
    for script in scripts:
        result = subprocess.run(["sh", "-n", "-c", script], capture_output=True, text=True)
        assert result.returncode == 0, (script, result.stderr)
    broken = subprocess.run(["sh", "-n", "-c", "case x in"], capture_output=True, text=True)
    assert broken.returncode != 0
