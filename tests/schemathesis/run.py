"""Runs schemathesis against a fresh `shiplog serve` on SQLite, the way `cargo xtask ci` does.

Usage: python run.py <path to the shiplog binary> <path to the schemathesis command>

It starts the server on a free port of 127.0.0.1 with a new database, creates what the API's
operations need to reach their logic (a workspace, an admin key, a project, a team, a
deployment, a hook), writes a schemathesis.toml naming those, and runs every check of
schemathesis with each of a few fixed seeds and a bounded number of examples. The exit status
is the first failing run's, else 0. Only loopback is contacted; the server is stopped at the
end.
"""

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

MASTER = "schemathesis-master-key-0123456789"
# Several seeds: one seed's examples pass where another's find a schema that says less than the
# parsers enforce.
SEEDS = [20261128, 1, 4]
EXAMPLES = 25


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call(base, method, path, key, body=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(base + path, data=data, method=method)
    request.add_header("Authorization", "Bearer " + key)
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=30) as response:
        text = response.read()
        return json.loads(text) if text else None


def wait_until_up(base, deadline):
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(base + "/healthz", timeout=5) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError):
            pass
        time.sleep(0.1)
    raise SystemExit("shiplog serve did not start within 60 s")


def seed(base):
    call(base, "POST", "/api/v1/workspaces", MASTER, {"code": "acme", "name": "Acme"})
    key = call(base, "POST", "/api/v1/workspaces/acme/api-keys", MASTER,
               {"name": "schemathesis", "role": "admin"})["key"]
    call(base, "POST", "/api/v1/projects", key, {"slug": "my-project", "name": "My Project"})
    call(base, "POST", "/api/v1/teams", key, {"code": "engineering"})
    deployed = call(base, "POST", "/api/webhooks/ci", key, {
        "event": "deploy.completed", "project_slug": "my-project", "status": "success",
        "environment": "production", "commit_sha": "3f786850e387550fdab836ed7e6dc881de23001b",
        "commit_message": "feat: login #PR-123", "url": "https://ci.example/runs/1",
    })
    applications = call(base, "GET", "/api/v1/projects/my-project/applications", key)
    hook = call(base, "POST", "/api/v1/projects/my-project/hooks", key, {
        "name": "status", "target_url": "https://example.com/statuses/{{ deployment.commit_sha }}",
        "trigger_when": {"events": ["deployment.succeeded"]},
    })
    # What the DELETE operations delete (each once; their later examples find nothing): a
    # deployment of a project of its own to an environment of its own. `DELETE
    # /api/v1/projects/{slug}` is left out: its path is PATCH's too, and the stateful phase
    # gives a path's parameter values to every method of it, so any slug set for DELETE is the
    # one its PATCH reads back (a 404 it reports as "created resource not found"), and the
    # default slug is the project every other operation needs. tests/lifecycle.rs deletes
    # projects.
    call(base, "POST", "/api/v1/projects", key, {"slug": "doomed", "name": "Doomed"})
    doomed = call(base, "POST", "/api/webhooks/ci", key, {
        "event": "deploy.completed", "project_slug": "doomed", "status": "success",
        "environment": "doomed-env", "commit_sha": "4f786850e387550fdab836ed7e6dc881de23001b",
        "url": "https://ci.example/runs/2",
    })
    doomed_applications = call(base, "GET", "/api/v1/projects/doomed/applications", key)
    return key, {
        "deployment": deployed["deployment_id"],
        "application": applications["items"][0]["id"],
        "hook": hook["id"],
        "doomed_deployment": doomed["deployment_id"],
        "doomed_application": doomed_applications["items"][0]["id"],
    }


# A 400 that no JSON schema can rule out: these bodies are templates (their variables and URLs
# are checked when saved), provider payloads whose fields depend on each other (a deploy event
# names its environment; a repository URL must be one; a status must be a known word), or a
# cursor naming no deployment of the workspace. Each such 400 names the field; schemathesis
# still checks that they are never a 5xx, always documented, and always match their schema.
SEMANTIC_400 = [
    ("^/api/v1/projects/[^/]+/hooks$", "POST"),
    ("^/api/v1/hooks/[^/]+$", "PUT"),
    ("^/pipelines/[^/]+/hooks/outgoing$", "POST"),
    ("^/api/webhooks/ci$", "POST"),
    ("^/api/hooks/v2/deployment$", "POST"),
    ("^/api/v1/deployments$", "GET"),
    # Incidents: times more than a day ahead of the server's clock (or before 1970) are refused,
    # which depends on when the request arrives, and `status: open` with `resolved_at` is a
    # contradiction between two fields.
    ("^/api/v1/incidents$", "POST"),
    ("^/api/v1/incidents/[^/]+$", "PATCH"),
]


# The import reads a stream: a line it cannot use is refused by number in a 200 answer (the
# other lines are stored), so a schema-violating body is answered 2xx, listing it in
# `rejected`; a body sent without its media type is a 415.
PER_LINE_REFUSALS = [
    ("^/api/v1/import$", "POST"),
]


# Incidents: a blank time counts as absent (scripts fill a variable they lack with ""), which
# a `date-time` schema cannot say, so a blank is "schema-violating" and still accepted. (Only
# the first [[operations]] entry matching an operation applies, hence one entry for both.)
BLANK_TIMES = [
    ("^/api/v1/incidents$", "POST"),
    ("^/api/v1/incidents/[^/]+$", "PATCH"),
]


def config(ids):
    """Values for the path parameters, so operations reach their logic instead of a 404, the
    master key where an operation needs it, and the operations whose 400s are semantic."""
    semantic = "".join(f"""
[[operations]]
include-path-regex = "{path}"
include-method = "{method}"
checks.positive_data_acceptance.expected-statuses = ["2xx", "400", "401", "403", "404", "409"]
""" + ("checks.negative_data_rejection.expected-statuses = [\"2xx\", \"400\", \"401\", \"403\", \"404\", \"409\"]\n" if (path, method) in BLANK_TIMES else "")
        for path, method in SEMANTIC_400)
    per_line = "".join(f"""
[[operations]]
include-path-regex = "{path}"
include-method = "{method}"
checks.negative_data_rejection.expected-statuses = ["2xx", "400", "401", "403", "404", "409", "415"]
""" for path, method in PER_LINE_REFUSALS)
    return semantic + per_line + f"""
[[operations]]
include-path-regex = "^/api/v1/workspaces$"
headers = {{ Authorization = "Bearer {MASTER}" }}


[[operations]]
include-path-regex = "^/api/v1/environments/[^/]+$"
include-method = "DELETE"
parameters = {{ "path.code" = "doomed-env" }}

[[operations]]
include-path-regex = "^/api/v1/deployments/[^/]+$"
include-method = "DELETE"
parameters = {{ "path.id" = "{ids['doomed_deployment']}" }}

[[operations]]
include-path-regex = "^/api/v1/applications/[^/]+$"
include-method = "DELETE"
parameters = {{ "path.id" = "{ids['doomed_application']}" }}

[parameters]
"path.code" = "acme"
"path.slug" = "my-project"
"path.key" = "PR-123"
"path.pipeline_id" = "{ids['application']}"

[[operations]]
include-path-regex = "^/api/v1/deployments/"
parameters = {{ "path.id" = "{ids['deployment']}" }}

[[operations]]
include-path-regex = "^/api/v1/hooks/"
parameters = {{ "path.id" = "{ids['hook']}" }}

[[operations]]
include-path-regex = "^/api/v1/applications/"
parameters = {{ "path.id" = "{ids['application']}" }}
"""


def main():
    binary, schemathesis = sys.argv[1], sys.argv[2]
    work = tempfile.mkdtemp(prefix="shiplog-schemathesis-")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = dict(os.environ,
               SHIPLOG_DATABASE_URL=os.path.join(work, "shiplog.db"),
               SHIPLOG_BIND=f"127.0.0.1:{port}",
               SHIPLOG_ADMIN_KEY=MASTER,
               SHIPLOG_LOG="error",
               SHIPLOG_NO_HOOK_WORKER="true")
    server = subprocess.Popen([binary, "serve"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until_up(base, time.time() + 60)
        key, ids = seed(base)
        with open(os.path.join(work, "schemathesis.toml"), "w") as f:
            f.write(config(ids))
        for seed_value in SEEDS:
            command = [schemathesis, "run", base + "/api/v1/openapi.json",
                       "-H", "Authorization: Bearer " + key,
                       "--checks", "all", "--seed", str(seed_value),
                       "--exclude-name", "DELETE /api/v1/projects/{slug}",
                       "--max-examples", str(EXAMPLES),
                       "--workers", "1", "--no-color", "--generation-database", "none"]
            print("$ schemathesis run", base + "/api/v1/openapi.json", "--checks all --seed",
                  seed_value, "--max-examples", EXAMPLES, flush=True)
            hooks = dict(os.environ, SCHEMATHESIS_HOOKS="hooks",
                         PYTHONPATH=os.path.dirname(os.path.abspath(__file__)))
            code = subprocess.run(command, cwd=work, env=hooks, timeout=300).returncode
            if code != 0:
                return code
        return 0
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    sys.exit(main())
