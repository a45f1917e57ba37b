"""Checks the deployment examples of docs/deploy/ with what can check them without a cluster.

- compose.yaml: valid against the Compose Specification's JSON schema (the one docker compose
  and podman-compose implement; tests/fixtures/compose-spec), and
- kubernetes.yaml: every object valid against Kubernetes' own API schema, strictly (unknown
  fields refused), with kubernetes-validate;
- both: they run the image `cargo xtask image` builds, set only settings shiplog reads (the
  Configuration table of docs/operations.md, which a Rust test keeps equal to the command
  line's), ask the health command or endpoints shiplog serves, on the port the image listens on.

Usage: check.py ROOT VERSION. Run by `cargo xtask release-check`.
"""

import json
import re
import sys
from pathlib import Path

import jsonschema
import kubernetes_validate
import yaml

KUBERNETES = "1.37.0"


def settings(root: Path) -> set:
    guide = (root / "docs" / "operations.md").read_text()
    table = guide.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| `(SHIPLOG_[A-Z_]+)`", table, re.M))


def fail(message: str) -> None:
    print(f"docs/deploy: {message}", file=sys.stderr)
    sys.exit(1)


def unknown(names, known: set) -> list:
    return sorted(set(names) - known)


def check_compose(root: Path, version: str, known: set) -> None:
    compose = yaml.safe_load((root / "docs" / "deploy" / "compose.yaml").read_text())
    schema = json.loads((root / "tests" / "fixtures" / "compose-spec" / "compose-spec.json").read_text())
    errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(compose), key=str)
    if errors:
        fail("compose.yaml is not valid Compose: " + "; ".join(e.message for e in errors))
    service = compose["services"]["shiplog"]
    if service["image"] != f"localhost/shiplog:{version}":
        fail(f"compose.yaml runs {service['image']}, not localhost/shiplog:{version}")
    if unknown(service["environment"], known):
        fail(f"compose.yaml sets {unknown(service['environment'], known)}, which shiplog does not read")
    if service["healthcheck"]["test"] != ["CMD", "/usr/local/bin/shiplog", "health"]:
        fail("compose.yaml's health check is not the image's `shiplog health`")
    if not any(port.endswith(":8080") for port in service["ports"]):
        fail("compose.yaml does not publish the image's port 8080")
    print(f"docs/deploy/compose.yaml: valid Compose, {len(service['environment'])} settings shiplog reads")


def check_kubernetes(root: Path, version: str, known: set) -> None:
    objects = [o for o in yaml.safe_load_all((root / "docs" / "deploy" / "kubernetes.yaml").read_text()) if o]
    for obj in objects:
        try:
            kubernetes_validate.validate(obj, KUBERNETES, strict=True)
        except kubernetes_validate.ValidationError as error:
            fail(f"kubernetes.yaml: {obj['kind']}/{obj['metadata']['name']}: {error.message}")
    kinds = {obj["kind"]: obj for obj in objects}
    for kind in ("Deployment", "Service", "Secret"):
        if kind not in kinds:
            fail(f"kubernetes.yaml has no {kind}")
    secret = kinds["Secret"]
    names = list(secret.get("stringData", {})) + list(secret.get("data", {}))
    if unknown(names, known):
        fail(f"kubernetes.yaml's Secret sets {unknown(names, known)}, which shiplog does not read")
    pod = kinds["Deployment"]["spec"]["template"]["spec"]
    container = pod["containers"][0]
    if container["image"] != f"localhost/shiplog:{version}":
        fail(f"kubernetes.yaml runs {container['image']}")
    probes = {container[p]["httpGet"]["path"] for p in ("livenessProbe", "readinessProbe")}
    if probes != {"/healthz", "/readyz"}:
        fail(f"kubernetes.yaml probes {probes}, not /healthz and /readyz")
    ports = {p["containerPort"] for p in container["ports"]}
    if ports != {8080} or kinds["Service"]["spec"]["ports"][0]["targetPort"] != 8080:
        fail("kubernetes.yaml does not send the Service to the image's port 8080")
    if pod["securityContext"]["runAsUser"] != 10001:
        fail("kubernetes.yaml runs as another user than the image's 10001")
    print(f"docs/deploy/kubernetes.yaml: {len(objects)} objects valid against Kubernetes {KUBERNETES}")


def main() -> None:
    root, version = Path(sys.argv[1]), sys.argv[2]
    known = settings(root)
    if len(known) < 10:
        fail(f"docs/operations.md's Configuration table lists only {sorted(known)}")
    check_compose(root, version, known)
    check_kubernetes(root, version, known)


main()
