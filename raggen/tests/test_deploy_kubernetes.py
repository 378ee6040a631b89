"""deploy/kubernetes: every manifest validated offline against the schemas of named Kubernetes
versions (kubernetes-validate, strict: an unknown field fails), the kustomization consistent with
the files, and the properties the deployment relies on: probes on /healthz and /readyz that the
application answers, a HorizontalPodAutoscaler on the worker Deployment, the migration Job, a
Secret template with no value and external PostgreSQL, Redis and S3."""

from __future__ import annotations

import copy
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import kubernetes_validate
import pytest
import yaml

pytestmark = pytest.mark.deploy

ROOT = Path(__file__).resolve().parents[2]
MANIFESTS = ROOT / "deploy" / "kubernetes"
#: The oldest Kubernetes the manifests are for, and the newest that kubernetes-validate carries.
KUBERNETES_VERSIONS = ("1.30.0", "1.37.0")
SECRET_TEMPLATE = "secret.example.yaml"
NOT_IN_SETTINGS = {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}  # read by boto3
#: Read by the worker's command line only (the Makefile's `make worker` reads it too).
COMMAND_ONLY = {"WORKER_CONCURRENCY"}


def _documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc]


def _kustomization() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((MANIFESTS / "kustomization.yaml").read_text())
    return data


def _all_objects() -> list[dict[str, Any]]:
    objects = []
    for name in [*_kustomization()["resources"], SECRET_TEMPLATE]:
        objects.extend(_documents(MANIFESTS / name))
    return objects


def _object(kind: str, name: str) -> dict[str, Any]:
    found = [o for o in _all_objects() if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} found"
    return found[0]


def _pod_spec(kind: str, name: str) -> dict[str, Any]:
    spec: dict[str, Any] = _object(kind, name)["spec"]["template"]["spec"]
    return spec


def _container(kind: str, name: str, container: str) -> dict[str, Any]:
    found: list[dict[str, Any]] = [
        c for c in _pod_spec(kind, name)["containers"] if c["name"] == container
    ]
    assert len(found) == 1, f"{name}: no single container {container}"
    return found[0]


def _settings_variables() -> set[str]:
    source = (ROOT / "raggen" / "settings.py").read_text(encoding="utf-8")
    return set(re.findall(r'env_\w+\(\s*"([A-Z][A-Z0-9_]+)"', source))


def test_kustomization_lists_every_manifest_but_the_secret_template():
    files = {path.name for path in MANIFESTS.glob("*.yaml")} - {"kustomization.yaml"}
    resources = _kustomization()["resources"]
    assert len(resources) == len(set(resources))
    assert set(resources) == files - {SECRET_TEMPLATE}
    assert SECRET_TEMPLATE in files


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize(
    "name", sorted(p.name for p in MANIFESTS.glob("*.yaml") if p.name != "kustomization.yaml")
)
def test_manifest_is_valid_for_kubernetes(name, version):
    documents = _documents(MANIFESTS / name)
    assert documents
    for document in documents:
        # Raises on a schema violation, and on a kind or apiVersion that version does not have.
        kubernetes_validate.validate(document, version, strict=True)


def test_validation_bites():
    """A misspelt field and a wrong type both fail: a passing manifest is a valid one."""
    web = _object("Deployment", "raggen-web")
    misspelt = copy.deepcopy(web)
    container = misspelt["spec"]["template"]["spec"]["containers"][0]
    container["readinessProbe"]["httpGet"]["paht"] = container["readinessProbe"]["httpGet"].pop(
        "path"
    )
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(misspelt, KUBERNETES_VERSIONS[0], strict=True)
    wrong_type = copy.deepcopy(web)
    wrong_type["spec"]["replicas"] = "two"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(wrong_type, KUBERNETES_VERSIONS[0], strict=True)


def test_every_workload_runs_the_kustomized_image_with_the_config_and_the_secret():
    (image,) = _kustomization()["images"]
    workloads = [("Deployment", "raggen-web"), ("Deployment", "raggen-worker")]
    workloads.append(("Job", "raggen-migrate"))
    for kind, name in workloads:
        spec = _pod_spec(kind, name)
        assert spec["securityContext"]["runAsNonRoot"] is True
        for container in [*spec.get("initContainers", []), *spec["containers"]]:
            assert container["image"] == image["name"], (name, container["name"])
            refs = {
                next(iter(ref)): next(iter(ref.values()))["name"] for ref in container["envFrom"]
            }
            assert refs == {"configMapRef": "raggen-config", "secretRef": "raggen-secrets"}
            assert container["securityContext"]["allowPrivilegeEscalation"] is False


def test_web_probes_and_service():
    web = _container("Deployment", "raggen-web", "web")
    (port,) = web["ports"]
    readiness = web["readinessProbe"]["httpGet"]
    liveness = web["livenessProbe"]["httpGet"]
    assert readiness["path"] == "/readyz" and readiness["port"] == port["name"]
    assert liveness["path"] == "/healthz" and liveness["port"] == port["name"]
    assert web["startupProbe"]["httpGet"]["path"] == "/healthz"
    assert "0.0.0.0" in web["command"] and str(port["containerPort"]) in web["command"]
    service = _object("Service", "raggen-web")
    pod_labels = _object("Deployment", "raggen-web")["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert service["spec"]["ports"][0]["targetPort"] == port["name"]


def test_the_probes_host_is_allowed(client, settings):
    """The kubelet sends the probes' Host header; the ConfigMap's ALLOWED_HOSTS accepts it and
    /healthz answers 200 (a DisallowedHost 400 would restart every pod)."""
    config = _object("ConfigMap", "raggen-config")["data"]
    settings.ALLOWED_HOSTS = config["ALLOWED_HOSTS"].split(",")
    web = _container("Deployment", "raggen-web", "web")
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        (header,) = web[probe]["httpGet"]["httpHeaders"]
        assert header["name"] == "Host"
        assert header["value"] in settings.ALLOWED_HOSTS
    response = client.get("/healthz", HTTP_HOST=header["value"])
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert client.get("/healthz", HTTP_HOST="10.1.2.3:8000").status_code == 400


def test_worker_is_scaled_by_the_autoscaler():
    worker = _object("Deployment", "raggen-worker")
    assert "replicas" not in worker["spec"], "the HorizontalPodAutoscaler owns the replica count"
    container = _container("Deployment", "raggen-worker", "worker")
    assert "celery -A raggen worker" in " ".join(container["command"])
    assert "inspect ping" in " ".join(container["livenessProbe"]["exec"]["command"])
    assert container["resources"]["requests"]["cpu"]
    hpa = _object("HorizontalPodAutoscaler", "raggen-worker")
    assert hpa["apiVersion"] == "autoscaling/v2"
    target = hpa["spec"]["scaleTargetRef"]
    assert (target["apiVersion"], target["kind"], target["name"]) == (
        "apps/v1",
        "Deployment",
        "raggen-worker",
    )
    assert 1 <= hpa["spec"]["minReplicas"] < hpa["spec"]["maxReplicas"]
    (metric,) = hpa["spec"]["metrics"]
    assert metric["resource"]["name"] == "cpu"


def test_migration_job_and_the_pods_that_wait_for_it():
    job = _object("Job", "raggen-migrate")
    assert job["apiVersion"] == "batch/v1"
    assert job["spec"]["backoffLimit"] >= 1
    spec = job["spec"]["template"]["spec"]
    assert spec["restartPolicy"] in {"Never", "OnFailure"}
    (container,) = spec["containers"]
    command = " ".join(container["command"])
    assert "manage.py migrate --noinput" in command and "ensure_admin" in command
    for name in ("raggen-web", "raggen-worker"):
        (init,) = _pod_spec("Deployment", name)["initContainers"]
        assert "manage.py migrate --check" in " ".join(init["command"])


def test_secret_template_has_every_key_and_no_value():
    secret = _object("Secret", "raggen-secrets")
    data = secret["stringData"]
    required = {"SECRET_KEY", "DATABASE_URL", "REDIS_URL", "AWS_ACCESS_KEY_ID"}
    required |= {
        "AWS_SECRET_ACCESS_KEY",
        "YANDEX_API_KEY",
        "GIGACHAT_CREDENTIALS",
        "OPENAI_API_KEY",
    }
    assert required <= set(data)
    for key, value in data.items():
        assert value == "" or "CHANGE_ME" in value, f"{key} has a value in the template"
    assert "data" not in secret


def test_config_and_secret_name_only_known_variables():
    config = _object("ConfigMap", "raggen-config")["data"]
    secret = _object("Secret", "raggen-secrets")["stringData"]
    assert not set(config) & set(secret)
    known = _settings_variables() | NOT_IN_SETTINGS | COMMAND_ONLY
    assert sorted((set(config) | set(secret)) - known) == []
    for key in config:
        assert not re.search(r"PASSWORD|SECRET_|TOKEN|_KEY$|CREDENTIALS", key), key
    assert config["SEARCH_BACKEND"] == "postgres"
    assert config["DEBUG"] == "false"


def test_postgres_redis_and_s3_are_external_services():
    external = {
        o["metadata"]["name"]: o["spec"]
        for o in _all_objects()
        if o["kind"] == "Service" and o["spec"].get("type") == "ExternalName"
    }
    assert set(external) == {"raggen-postgres", "raggen-redis", "raggen-s3"}
    assert all(spec["externalName"] for spec in external.values())
    secret = _object("Secret", "raggen-secrets")["stringData"]
    config = _object("ConfigMap", "raggen-config")["data"]
    assert urlsplit(secret["DATABASE_URL"]).hostname == "raggen-postgres"
    assert urlsplit(secret["REDIS_URL"]).hostname == "raggen-redis"
    storage = urlsplit(config["STORAGE_URL"])
    assert storage.scheme == "s3"
    assert urlsplit(storage.query.removeprefix("endpoint_url=")).hostname == "raggen-s3"
    # Nothing in the cluster runs a database, Redis or an object store of its own.
    workloads = [o for o in _all_objects() if o["kind"] in {"Deployment", "StatefulSet"}]
    assert {o["metadata"]["name"] for o in workloads} == {"raggen-web", "raggen-worker"}


def test_every_shell_script_parses():
    scripts = []
    for o in _all_objects():
        spec = o.get("spec", {}).get("template", {}).get("spec", {})
        for container in [*spec.get("initContainers", []), *spec.get("containers", [])]:
            for command in (
                container.get("command"),
                container.get("livenessProbe", {}).get("exec", {}).get("command"),
            ):
                if command and command[:2] == ["sh", "-c"]:
                    scripts.append(command[2])
    assert len(scripts) >= 5  # migrate, two waits for migrations, the worker and its probe
    for script in scripts:
        result = subprocess.run(["sh", "-n", "-c", script], capture_output=True, text=True)
        assert result.returncode == 0, (script, result.stderr)


def test_kustomize_renders_what_the_files_say():
    """The real kustomize (built into kubectl) renders the folder; every object it gives is
    valid, in the namespace, with the registry's image and without the label in a selector."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("no kubectl (its kustomize renders the folder); each file is validated above")
    result = subprocess.run(
        [kubectl, "kustomize", str(MANIFESTS)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    rendered = [doc for doc in yaml.safe_load_all(result.stdout) if doc]
    names = {(o["kind"], o["metadata"]["name"]) for o in rendered}
    expected = {(o["kind"], o["metadata"]["name"]) for o in _all_objects() if o["kind"] != "Secret"}
    assert names == expected
    (image,) = _kustomization()["images"]
    for document in rendered:
        for version in KUBERNETES_VERSIONS:
            kubernetes_validate.validate(document, version, strict=True)
        metadata = document["metadata"]
        assert metadata["labels"]["app.kubernetes.io/part-of"] == "raggen"
        if document["kind"] != "Namespace":
            assert metadata["namespace"] == "raggen"
        template = document.get("spec", {}).get("template", {}).get("spec", {})
        for container in [*template.get("initContainers", []), *template.get("containers", [])]:
            assert container["image"] == f"{image['newName']}:{image['newTag']}"
        if "selector" in document.get("spec", {}):
            selector = document["spec"]["selector"]
            assert "app.kubernetes.io/part-of" not in selector.get("matchLabels", selector)


def test_the_manifests_in_the_deployment_guide_are_valid():
    guide = (ROOT / "docs" / "DEPLOY.md").read_text(encoding="utf-8")
    blocks = [yaml.safe_load(b) for b in re.findall(r"```yaml\n(.*?)```", guide, re.S)]
    manifests = [b for b in blocks if isinstance(b, dict) and "apiVersion" in b]
    assert manifests, "the Ingress example"
    for manifest in manifests:
        for version in KUBERNETES_VERSIONS:
            kubernetes_validate.validate(manifest, version, strict=True)
        if manifest["kind"] == "Ingress":
            (rule,) = manifest["spec"]["rules"]
            backend = rule["http"]["paths"][0]["backend"]["service"]
            service = _object("Service", backend["name"])
            assert backend["port"]["name"] in {p["name"] for p in service["spec"]["ports"]}
