"""The Tekton path (tekton/): the objects pass the Tekton CRD schemas and Tekton's own Go
validation (tests/conformance/tekton), a push's webhook goes through Tekton's own
interceptor, binding and template code into a PipelineRun that validates, and the ship
Task's steps, run as Tekton runs them (tests/tekton_runner.py), build, test, push and pin
against a real bare Git remote and a loopback registry — or push nothing when the
function's test fails."""

from __future__ import annotations

import glob
import hashlib
import hmac
import json
import os
import re
import subprocess
import sys
import threading

import pytest
import yaml

import containers
import schemas
import tekton_runner
from conftest import ROOT
from gitrepo import clone, git, head
from gotool import build_test_binary, go_env

TEKTON = os.path.join(ROOT, "tekton")
HARNESS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "conformance", "tekton")


def tekton_objects() -> list[tuple[str, dict]]:
    """(file, object) for every YAML document under tekton/."""
    out = []
    for path in sorted(glob.glob(os.path.join(TEKTON, "*.yaml"))):
        with open(path) as f:
            out += [(os.path.basename(path), d) for d in yaml.safe_load_all(f) if d]
    return out


def object_id(item) -> str:
    f, o = item
    return f"{f}/{o['kind']}/{o['metadata']['name']}"


def by_kind(kind: str, name: str) -> dict:
    return next(o for _, o in tekton_objects() if o["kind"] == kind and o["metadata"]["name"] == name)


OBJECTS = tekton_objects()
TEKTON_KINDS = {"Task", "Pipeline", "PipelineRun", "EventListener", "TriggerBinding", "TriggerTemplate", "Trigger"}


# --- schemas -----------------------------------------------------------------------------

def schema_problems(obj: dict) -> list[str]:
    if obj["apiVersion"].split("/")[0] in ("tekton.dev", "triggers.tekton.dev"):
        return schemas.validate(obj)
    import kubernetes_validate

    try:
        kubernetes_validate.validate(obj, "1.33.0", strict=True)
    except kubernetes_validate.ValidationError as e:
        return [f"{obj['kind']}/{obj['metadata']['name']}: {str(e).splitlines()[0]}"]
    return []


@pytest.mark.parametrize("item", OBJECTS, ids=object_id)
def test_every_object_passes_its_schema(item):
    """Tekton kinds against the CRDs of Pipelines v1.15.0 / Triggers v0.37.0 (unknown fields
    refused); ServiceAccount and RBAC against Kubernetes' own schemas, strictly."""
    _, obj = item
    assert schema_problems(obj) == []


def test_the_schema_check_can_fail():
    task = by_kind("Task", "fnops-ship")
    bad = json.loads(json.dumps(task))
    bad["spec"]["steps"][0]["scirpt"] = bad["spec"]["steps"][0].pop("script")
    assert any("scirpt" in p for p in schema_problems(bad))


def test_the_folder_holds_every_part():
    kinds = sorted({(o["kind"], o["metadata"]["name"]) for _, o in OBJECTS})
    assert ("Task", "fnops-ship") in kinds and ("Pipeline", "fnops-ship") in kinds
    assert {k for k, _ in kinds} >= {"EventListener", "TriggerBinding", "TriggerTemplate", "Trigger",
                                    "ServiceAccount", "RoleBinding", "ClusterRoleBinding"}
    assert os.path.isfile(os.path.join(TEKTON, "Dockerfile")) and os.path.isfile(os.path.join(TEKTON, "README.md"))


# --- Tekton's own Go validation ------------------------------------------------------------

@pytest.fixture(scope="session")
def tekton_harness(tmp_path_factory):
    """tests/conformance/tekton built once (`go test -c`)."""
    binary = tmp_path_factory.mktemp("tekton-bin") / "tekton.test"
    return build_test_binary(HARNESS, binary, "the Tekton harness (tests/conformance/tekton)")


def go_judge(harness: str, folder: str) -> subprocess.CompletedProcess:
    return subprocess.run([harness, "-test.run", "^TestObjects$", "-test.v", "-objects", folder],
                          cwd=HARNESS, env=go_env(), capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="session")
def judged_folder(tekton_harness):
    return go_judge(tekton_harness, TEKTON)


def _subtest(name: str) -> str:
    return name.replace(" ", "_")


@pytest.mark.parametrize("item", [i for i in OBJECTS if i[1]["kind"] in TEKTON_KINDS], ids=object_id)
def test_tekton_accepts_the_object(item, judged_folder):
    """SetDefaults + Validate of tektoncd/pipeline v1.15.0 / tektoncd/triggers v0.37.0, as
    their admission webhooks run them on create; a refusal shows Tekton's own message."""
    name = f"TestObjects/{_subtest(object_id(item))}"
    out = judged_folder.stdout
    if f"--- PASS: {name} " not in out:
        block = [ln for ln in out.splitlines() if object_id(item).split("/", 1)[1] in ln or ln.startswith("        ")]
        pytest.fail(f"{name} did not pass (exit {judged_folder.returncode}):\n" + "\n".join(block[-40:])
                    + judged_folder.stderr[-2000:], pytrace=False)


def _go_requires(path: str) -> dict[str, str]:
    with open(path) as f:
        return dict(re.findall(r"^\s*([a-z0-9.-]+\.[a-z]+/\S+) (v\S+)", f.read(), re.M))


def test_the_tekton_module_shares_the_conformance_modules_versions():
    """Same versions as tests/conformance/go.mod wherever both need a module, so the second
    harness reuses the first's build cache (~20 s instead of a cold build of k8s and Knative)."""
    parent = _go_requires(os.path.join(HARNESS, "..", "go.mod"))
    ours = _go_requires(os.path.join(HARNESS, "go.mod"))
    differ = {m: (v, parent[m]) for m, v in ours.items() if m in parent and parent[m] != v}
    assert not differ, ("bring tests/conformance/tekton to tests/conformance's versions "
                        f"(go get MODULE@VERSION there, then go mod tidy): {differ}")


def test_the_go_judges_can_fail(tekton_harness):
    """The harness' own table: hand-written objects Tekton refuses, with its words."""
    r = subprocess.run([tekton_harness, "-test.run", "^TestJudges$", "-test.v"], cwd=HARNESS, env=go_env(),
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-6000:] + r.stderr[-2000:]
    assert "--- PASS: TestJudges/task_refuses_an_undeclared_param" in r.stdout


def test_a_broken_task_fails_with_tektons_words(tekton_harness, tmp_path):
    task = json.loads(json.dumps(by_kind("Task", "fnops-ship")))
    task["spec"]["steps"][0]["env"].append({"name": "X", "value": "$(params.nope)"})
    (tmp_path / "task.yaml").write_text(yaml.safe_dump(task))
    r = go_judge(tekton_harness, str(tmp_path))
    assert r.returncode == 1 and "--- FAIL: TestObjects/task.yaml/Task/fnops-ship" in r.stdout, r.stdout[-3000:]
    assert 'non-existent variable in "$(params.nope)"' in r.stdout


# --- a push's webhook, through Tekton's own interceptor, binding and template code ---------

WEBHOOK_SECRET = "whsec-0123456789abcdef"
SHA = "9f2c1e0d8b7a69584736251403f2e1d0c9b8a796"


def github_push(ref: str = "refs/heads/main") -> bytes:
    """A push event's payload as GitHub sends it (the fields a binding may read, and more)."""
    return json.dumps({
        "ref": ref, "before": "0" * 40, "after": SHA, "created": False, "deleted": False, "forced": False,
        "compare": f"https://github.com/acme/functions/compare/000000000000...{SHA[:12]}",
        "repository": {"id": 1296269, "name": "functions", "full_name": "acme/functions", "private": True,
                       "html_url": "https://github.com/acme/functions",
                       "clone_url": "https://github.com/acme/functions.git",
                       "ssh_url": "git@github.com:acme/functions.git", "default_branch": "main"},
        "pusher": {"name": "ada", "email": "ada@example.com"},
        "head_commit": {"id": SHA, "message": "hello: greet by name", "timestamp": "2026-12-02T15:00:00Z"},
    }, separators=(",", ":")).encode()


def github_headers(body: bytes, event: str = "push", secret: str = WEBHOOK_SECRET) -> dict:
    """GitHub's headers: X-Hub-Signature-256 is sha256=HMAC-SHA256(secret, the raw body), hex."""
    sig = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {"Content-Type": ["application/json"], "User-Agent": ["GitHub-Hookshot/5f6c3a1"],
            "X-GitHub-Event": [event], "X-GitHub-Delivery": ["72d3162e-cc78-11e3-81ab-4c9367dc0958"],
            "X-GitHub-Hook-ID": ["292430182"], "X-Hub-Signature-256": [f"sha256={sig}"]}


def deliver(harness: str, tmp_path, trigger: str, header: dict, body: bytes) -> dict:
    """What the EventListener makes of one request (TestDelivery, Tekton's own code)."""
    request, response = tmp_path / "request.json", tmp_path / "response.json"
    request.write_text(json.dumps({
        "trigger": trigger, "namespace": "fnops-ci", "eventID": "e1b5c6d2", "header": header,
        "body": body.decode(), "secrets": {"fnops-ci/fnops-webhook": {"secret": WEBHOOK_SECRET}}}))
    r = subprocess.run([harness, "-test.run", "^TestDelivery$", "-objects", TEKTON, "-request", str(request),
                        "-response", str(response)], cwd=HARNESS, env=go_env(), capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0 and response.exists(), r.stdout[-4000:] + r.stderr[-2000:]
    return json.loads(response.read_text())


def created(out: dict) -> dict:
    """The one resource the template made, named as the API server names a generateName."""
    assert out["continue"], out.get("status")
    assert len(out["resources"]) == 1
    run = out["resources"][0]
    md = run["metadata"]
    md["name"] = md.pop("generateName") + "x7k2p"
    md["namespace"] = "fnops-ci"
    return run


def judge_run(harness: str, tmp_path, run: dict) -> None:
    assert schemas.validate(run) == []
    folder = tmp_path / "created"
    folder.mkdir()
    (folder / "pipelinerun.yaml").write_text(yaml.safe_dump(run))
    r = go_judge(harness, str(folder))
    assert r.returncode == 0 and "--- PASS: TestObjects/pipelinerun.yaml/PipelineRun/" in r.stdout, r.stdout[-3000:]


def test_a_signed_github_push_starts_a_pipelinerun_tekton_accepts(tekton_harness, tmp_path):
    body = github_push()
    out = deliver(tekton_harness, tmp_path, "fnops-github-push", github_headers(body), body)
    assert out["params"] == {"repo-url": "https://github.com/acme/functions.git", "revision": SHA,
                             "git-ref": "refs/heads/main", "env": "dev"}
    run = created(out)
    assert run["kind"] == "PipelineRun" and run["spec"]["pipelineRef"] == {"name": "fnops-ship"}
    assert {p["name"]: p["value"] for p in run["spec"]["params"]} == out["params"]
    assert run["spec"]["taskRunTemplate"]["serviceAccountName"] == "fnops-ship"
    assert WEBHOOK_SECRET not in json.dumps(run)
    judge_run(tekton_harness, tmp_path, run)
    # The PipelineRun's params are the Pipeline's, and each reaches the ship Task.
    pipeline = by_kind("Pipeline", "fnops-ship")
    ship = tekton_runner.pipeline_task_params(pipeline, "ship", out["params"])
    assert ship["git-ref"] == "refs/heads/main" and ship["env"] == "dev"
    assert tekton_runner.pipeline_task_params(pipeline, "clone", out["params"])["REVISION"] == SHA


@pytest.mark.parametrize("tamper, says", [
    ("body", "payload signature check failed"),
    ("secret", "payload signature check failed"),
    ("unsigned", "no X-Hub-Signature-256 header set"),
    ("event", "event type pull_request is not allowed"),
])
def test_a_push_github_did_not_sign_starts_nothing(tekton_harness, tmp_path, tamper, says):
    body = github_push()
    header = github_headers(body, secret="not-the-secret" if tamper == "secret" else WEBHOOK_SECRET,
                            event="pull_request" if tamper == "event" else "push")
    if tamper == "body":  # signed, then changed on the way: another revision to build
        body = body.replace(SHA.encode(), b"0badc0de" * 5)
    if tamper == "unsigned":
        del header["X-Hub-Signature-256"]
    out = deliver(tekton_harness, tmp_path, "fnops-github-push", header, body)
    assert out["continue"] is False and says in out["status"], out
    assert not out.get("resources")


def test_a_gitlab_push_with_the_token_starts_a_pipelinerun(tekton_harness, tmp_path):
    body = json.dumps({
        "object_kind": "push", "event_name": "push", "before": "0" * 40, "after": SHA, "ref": "refs/heads/main",
        "checkout_sha": SHA, "user_username": "ada",
        "project": {"id": 15, "path_with_namespace": "acme/functions", "default_branch": "main",
                    "git_http_url": "https://gitlab.example.com/acme/functions.git",
                    "git_ssh_url": "git@gitlab.example.com:acme/functions.git"},
    }).encode()
    header = {"Content-Type": ["application/json"], "X-Gitlab-Event": ["Push Hook"],
              "X-Gitlab-Token": [WEBHOOK_SECRET]}
    out = deliver(tekton_harness, tmp_path, "fnops-gitlab-push", header, body)
    run = created(out)
    assert out["params"]["repo-url"] == "https://gitlab.example.com/acme/functions.git"
    assert out["params"]["revision"] == SHA
    judge_run(tekton_harness, tmp_path, run)
    header["X-Gitlab-Token"] = ["guessed"]
    refused = deliver(tekton_harness, tmp_path, "fnops-gitlab-push", header, body)
    assert refused["continue"] is False and refused["status"]


# --- the ship Task's steps, as Tekton runs them, against a real remote and registry --------

GITOPS_TOKEN = "glpat-tekton-0123456789abcdef"
REGISTRY_PASSWORD = "registry-password-0123456789"
HANDLER = 'def handle(event, context):\n    return {"hello": event}\n'
UNIT_TEST = '''import unittest

import handler


class HandlerTest(unittest.TestCase):
    def test_handle(self):
        self.assertEqual(handler.handle("x", {}), {"hello": "x"})
'''
# The contract of function.yaml's `test:`: a command run inside the built image before push.
FUNCTION = "runtime: python3.11\ntest:\n  command: [python, -m, unittest, discover, -s, tests]\n  timeout: 10m\n"


def image_env(home: str) -> dict:
    """The step container's environment: the image's ENV lines (tekton/Dockerfile), with
    this machine's PATH standing in for the image's (fnops, git, buildah, python3)."""
    env = {"PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"], "HOME": home,
           "LANG": "C.UTF-8"}
    with open(os.path.join(TEKTON, "Dockerfile")) as f:
        for line in f:
            if line.startswith("ENV "):
                env.update(kv.split("=", 1) for kv in line.split()[1:])
    return env


def git_clone_task(url: str, revision: str, output: str) -> None:
    """The catalog git-clone task's git-init, with DEPTH 0: init, fetch the revision with its
    history, reset --hard FETCH_HEAD (so HEAD is the pushed commit)."""
    os.makedirs(output)
    git(output, "init", "--quiet")
    git(output, "remote", "add", "origin", url)
    git(output, "fetch", "--quiet", "--force", "--update-head-ok", "origin", revision)
    git(output, "reset", "--quiet", "--hard", "FETCH_HEAD")


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    if containers.have_tools() is not None:
        pytest.skip(f"needs {containers.have_tools()} (installed by .ci/run)")
    with containers.registry_with_base(str(tmp_path_factory.mktemp("registry"))) as rb:
        yield rb


@pytest.fixture
def origin(tmp_path):
    """A functions repository's bare remote (main holds functions/hello and its unittest
    suite) and a work tree that pushes to it; -> (bare, push(path, text) -> new sha)."""
    bare = str(tmp_path / "origin.git")
    git(tmp_path, "init", "--quiet", "--bare", "--initial-branch=main", bare)
    work = tmp_path / "work"
    git(tmp_path, "init", "--quiet", "--initial-branch=main", str(work))
    hello = work / "functions" / "hello"
    (hello / "tests").mkdir(parents=True)
    (hello / "function.yaml").write_text(FUNCTION)
    (hello / "handler.py").write_text(HANDLER)
    (hello / "requirements.txt").write_text("# none\n")
    (hello / "tests" / "test_handler.py").write_text(UNIT_TEST)
    git(work, "add", "-A")
    git(work, "commit", "--quiet", "-m", "hello")
    git(work, "remote", "add", "origin", bare)
    git(work, "push", "--quiet", "origin", "main")

    def push(path: str, text: str) -> str:
        (work / "functions" / path).write_text(text)
        git(work, "commit", "--quiet", "-am", f"edit {path}")
        git(work, "push", "--quiet", "origin", "main")
        return head(str(work))

    return bare, push


def run_pipeline(tmp_path, registry, bare: str, revision: str, ref: str = "refs/heads/main", **more):
    """The PipelineRun a push creates: clone, then the fnops-ship Task's steps. The registry
    namespace is the test's own, so an empty tag list means this run pushed nothing."""
    reg, base = registry
    ns = "fns-" + hashlib.sha256(str(tmp_path).encode()).hexdigest()[:10]
    pipeline, task = by_kind("Pipeline", "fnops-ship"), by_kind("Task", "fnops-ship")
    params = {"repo-url": bare, "revision": revision, "git-ref": ref, "env": "dev",
              "registry": f"{reg.host}/{ns}", "base-image": base, **more}
    run = tmp_path / f"run-{revision[:7]}"
    clone = tekton_runner.pipeline_task_params(pipeline, "clone", params)
    git_clone_task(clone["URL"], clone["REVISION"], str(run / "source"))
    dockerconfig = run / "dockerconfig"
    dockerconfig.mkdir()
    auth = __import__("base64").b64encode(f"ci:{REGISTRY_PASSWORD}".encode()).decode()
    (dockerconfig / "config.json").write_text(json.dumps({"auths": {reg.host: {"auth": auth}}}))
    (run / "home").mkdir()
    result = tekton_runner.run_task(
        task, params=tekton_runner.pipeline_task_params(pipeline, "ship", params),
        workspaces={"source": str(run / "source"), "dockerconfig": str(dockerconfig)},
        image_env=image_env(str(run / "home")), secrets={"fnops-gitops-token": {"token": GITOPS_TOKEN}})
    return result, ns


def tags(registry, ns: str) -> list[str]:
    return registry[0].tags(f"{ns}/hello")


def test_a_push_whose_test_passes_ships_and_pins(tmp_path, registry, origin):
    bare, _ = origin
    sha = git(bare, "rev-parse", "main")
    result, ns = run_pipeline(tmp_path, registry, bare, sha)
    assert result.succeeded, result.log[-4000:]
    step = result.steps[0]
    assert step.env["GITOPS_TOKEN"] == GITOPS_TOKEN  # from the Secret, through the environment
    digest = registry[0].manifest_digest(f"{ns}/hello", f"sha-{sha[:7]}")
    assert json.loads(result.results["functions"]) == ["hello"]
    assert json.loads(result.results["digests"]) == {"hello": digest}
    pin_commit = git(bare, "rev-parse", "main")
    assert result.results["commit"] == pin_commit and pin_commit != sha and result.results["pr-url"] == ""
    assert git(bare, "rev-parse", f"{pin_commit}^") == sha  # one commit on top of the push
    pin = yaml.safe_load(git(bare, "show", "main:functions/hello/releases/dev.yaml"))
    assert pin["image"] == f"{registry[0].host}/{ns}/hello:sha-{sha[:7]}@{digest}"
    assert pin["source"]["commit"] == sha
    pipeline = by_kind("Pipeline", "fnops-ship")
    assert tekton_runner.pipeline_results(pipeline, {"ship": result.results}) == {
        "functions": '["hello"]', "digests": json.dumps({"hello": digest}), "commit": pin_commit}
    # The test ran in the image, and no secret reached the log.
    assert "fnops: hello: test passed in " in result.log, result.log[-3000:]
    for secret in (GITOPS_TOKEN, REGISTRY_PASSWORD, __import__("base64").b64encode(f"ci:{REGISTRY_PASSWORD}".encode()).decode()):
        assert secret not in result.log


def test_a_push_whose_test_fails_pushes_and_pins_nothing(tmp_path, registry, origin):
    bare, push = origin
    sha = push("hello/tests/test_handler.py", UNIT_TEST.replace('{"hello": "x"}', '{"hello": "y"}'))
    before = git(bare, "rev-parse", "main")
    result, ns = run_pipeline(tmp_path, registry, bare, sha)
    assert not result.succeeded and result.steps[0].returncode == 1, result.log[-3000:]
    assert tags(registry, ns) == []  # nothing pushed
    assert git(bare, "rev-parse", "main") == before == sha  # nothing committed
    assert "AssertionError" in result.log and "test_handle" in result.log  # the test's own output
    assert GITOPS_TOKEN not in result.log


def test_a_tag_push_ships_nothing(tmp_path, registry, origin):
    bare, _ = origin
    sha = git(bare, "rev-parse", "main")
    result, ns = run_pipeline(tmp_path, registry, bare, sha, ref="refs/tags/v1.0.0")
    assert result.succeeded and "is not a branch" in result.log
    assert result.results == {"functions": "[]", "digests": "{}", "commit": "", "pr-url": ""}
    assert tags(registry, ns) == [] and git(bare, "rev-parse", "main") == sha


def test_pr_mode_off_github_pushes_the_review_branch_and_says_who_opens_the_request(tmp_path, registry, origin):
    """A remote on no GitHub (here a bare repository; GitLab, Gitea alike): the pins go to the
    review branch, main stays as pushed, and the log says to open the merge request."""
    bare, _ = origin
    sha = git(bare, "rev-parse", "main")
    result, ns = run_pipeline(tmp_path, registry, bare, sha, mode="pr")
    assert result.succeeded, result.log[-4000:]
    assert git(bare, "rev-parse", "main") == sha
    review = git(bare, "rev-parse", "refs/heads/fnops/dev/hello")
    assert result.results["commit"] == review and result.results["pr-url"] == ""
    assert git(bare, "rev-parse", f"{review}^") == sha
    assert yaml.safe_load(git(bare, "show", f"{review}:functions/hello/releases/dev.yaml"))["image"].endswith(
        json.loads(result.results["digests"])["hello"])
    assert (f"pushed the review branch fnops/dev/hello to {bare}, but opened no pull request" in result.log
            and "Open a merge request from fnops/dev/hello into main on your Git host" in result.log), result.log


@pytest.fixture
def locked_registry(tmp_path):
    """A docker-registry on 127.0.0.1 that answers only to ci / REGISTRY_PASSWORD (htpasswd,
    bcrypt); -> (host, GET helper that sends those credentials)."""
    import base64
    import urllib.error
    import urllib.request
    import warnings

    from conftest import stop_process

    with warnings.catch_warnings():  # crypt is deprecated, and the only bcrypt at hand
        warnings.simplefilter("ignore", DeprecationWarning)
        import crypt
    root = tmp_path / "locked-registry"
    root.mkdir()
    (root / "htpasswd").write_text(f"ci:{crypt.crypt(REGISTRY_PASSWORD, crypt.mksalt(crypt.METHOD_BLOWFISH))}\n")
    host = f"127.0.0.1:{containers.free_port()}"
    (root / "config.yml").write_text(
        f"version: 0.1\nlog: {{level: warn}}\nstorage:\n  filesystem: {{rootdirectory: {root}/data}}\n"
        f"http:\n  addr: {host}\nauth:\n  htpasswd: {{realm: fnops-test, path: {root}/htpasswd}}\n")
    with open(root / "registry.log", "w") as log:
        proc = subprocess.Popen(["docker-registry", "serve", str(root / "config.yml")], stdout=log,
                                stderr=subprocess.STDOUT)
        try:
            basic = base64.b64encode(f"ci:{REGISTRY_PASSWORD}".encode()).decode()

            def get(path: str, auth: bool = True):
                req = urllib.request.Request(f"http://{host}{path}", headers={
                    "Authorization": f"Basic {basic}"} if auth else {})
                try:
                    with urllib.request.urlopen(req, timeout=5) as r:
                        return r.status, json.loads(r.read() or b"null")
                except urllib.error.HTTPError as e:
                    return e.code, None

            for _ in range(200):
                try:
                    if get("/v2/", auth=False)[0] == 401:
                        break
                except OSError:
                    pass
                __import__("time").sleep(0.1)
            else:
                raise RuntimeError("the locked docker-registry did not start")
            yield host, get
        finally:
            stop_process(proc)


def test_the_dockerconfig_workspace_is_how_the_task_logs_in(tmp_path, registry, origin, locked_registry):
    """Against a registry that refuses anonymous pushes: without the workspace the push is
    refused and nothing is pinned; with it (the Secret's config.json) the image lands."""
    host, get = locked_registry
    bare, _ = origin
    sha = git(bare, "rev-parse", "main")
    task, pipeline = by_kind("Task", "fnops-ship"), by_kind("Pipeline", "fnops-ship")
    params = {"repo-url": bare, "revision": sha, "git-ref": "refs/heads/main", "env": "dev",
              "registry": f"{host}/fns", "base-image": registry[1]}
    auth = __import__("base64").b64encode(f"ci:{REGISTRY_PASSWORD}".encode()).decode()
    outcomes = {}
    for bound in (False, True):
        run = tmp_path / f"bound-{bound}"
        git_clone_task(bare, sha, str(run / "source"))
        (run / "home").mkdir()
        config = run / "dockerconfig"
        config.mkdir()
        # a kubernetes.io/dockerconfigjson Secret mounts its data as .dockerconfigjson
        (config / ".dockerconfigjson").write_text(json.dumps({"auths": {host: {"auth": auth}}}))
        outcomes[bound] = tekton_runner.run_task(
            task, params=tekton_runner.pipeline_task_params(pipeline, "ship", params),
            workspaces={"source": str(run / "source"), "dockerconfig": str(config) if bound else None},
            image_env=image_env(str(run / "home")))
    refused, landed = outcomes[False], outcomes[True]
    assert not refused.succeeded and "not authorized" in refused.log, refused.log[-3000:]
    assert landed.succeeded, landed.log[-3000:]
    assert get("/v2/fns/hello/tags/list")[1]["tags"] == [f"sha-{sha[:7]}"]
    assert git(bare, "rev-parse", "main") == landed.results["commit"]
    for secret in (REGISTRY_PASSWORD, auth):
        assert secret not in refused.log + landed.log


def test_a_late_pipelinerun_for_an_older_push_moves_no_pin_back(tmp_path, registry, origin):
    """Two pushes, their PipelineRuns finishing out of order: the older one pins nothing."""
    bare, push = origin
    older = push("hello/handler.py", HANDLER + "# the first change\n")
    newer = push("hello/handler.py", HANDLER + "# the second change\n")
    first, ns = run_pipeline(tmp_path, registry, bare, newer)
    assert first.succeeded and json.loads(first.results["functions"]) == ["hello"], first.log[-3000:]
    pinned = git(bare, "rev-parse", "main")
    late, _ = run_pipeline(tmp_path, registry, bare, older)
    assert late.succeeded, late.log[-3000:]
    assert late.results["functions"] == "[]" and late.results["commit"] == ""
    assert git(bare, "rev-parse", "main") == pinned
    pin = yaml.safe_load(git(bare, "show", "main:functions/hello/releases/dev.yaml"))
    assert pin["source"]["commit"] == newer and tags(registry, ns) == [f"sha-{newer[:7]}"]


def test_racing_pipelineruns_both_land_and_the_newest_code_stays_pinned(tmp_path, registry, origin):
    """Two pushes a moment apart (a new function, then a change to hello), their PipelineRuns
    running at once against one remote: both succeed, and main ends with every function
    pinned at its newest code — whichever run pushed first, the other redid on its tip."""
    bare, _ = origin
    work = clone(bare, tmp_path / "racer")
    greet = os.path.join(work, "functions", "greet")
    os.makedirs(os.path.join(greet, "tests"))
    for name, text in (("function.yaml", FUNCTION), ("handler.py", HANDLER), ("requirements.txt", "# none\n"),
                       (os.path.join("tests", "test_handler.py"), UNIT_TEST)):
        with open(os.path.join(greet, name), "w", encoding="utf-8") as f:
            f.write(text)
    git(work, "add", "-A")
    git(work, "commit", "--quiet", "-m", "greet")
    git(work, "push", "--quiet", "origin", "main")
    with_greet = head(work)
    with open(os.path.join(work, "functions", "hello", "handler.py"), "a", encoding="utf-8") as f:
        f.write("# a change after greet\n")
    git(work, "commit", "--quiet", "-am", "hello: a change")
    git(work, "push", "--quiet", "origin", "main")
    newest = head(work)

    runs, errors = {}, []

    def pipelinerun(rev):
        try:
            runs[rev] = run_pipeline(tmp_path, registry, bare, rev)[0]
        except BaseException as e:  # the assertion below shows it
            errors.append(e)

    threads = [threading.Thread(target=pipelinerun, args=(rev,)) for rev in (with_greet, newest)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(600)
    assert not errors, errors
    for rev, result in runs.items():
        assert result.succeeded, (rev, result.log[-4000:])
        if result.results["commit"]:  # what a run says it committed is on main
            assert git(bare, "merge-base", "--is-ancestor", result.results["commit"], "main") == ""
    pins = {fn: yaml.safe_load(git(bare, "show", f"main:functions/{fn}/releases/dev.yaml")) for fn in ("hello", "greet")}
    assert pins["hello"]["source"]["commit"] == newest, pins["hello"]
    assert pins["greet"]["source"]["commit"] in (with_greet, newest), pins["greet"]
    # Each function's pin moved forward only: the log of hello's pin never returns to older code.
    history = git(bare, "log", "--format=%H", "main", "--", "functions/hello/releases/dev.yaml").split()
    sources = [yaml.safe_load(git(bare, "show", f"{c}:functions/hello/releases/dev.yaml"))["source"]["commit"]
               for c in reversed(history)]
    assert sources[-1] == newest and sources.count(newest) == 1, sources


# --- the Task's own guards, and the runner the end-to-end tests trust ----------------------

def test_no_param_or_result_is_spliced_into_a_script():
    """Params reach scripts only through `env` (a payload's branch name is data, not code)."""
    for _, obj in OBJECTS:
        if obj["kind"] == "Task":
            for step in obj["spec"]["steps"]:
                spliced = re.findall(r"\$\((?:params|results|workspaces|context|tasks|steps)\b[^)]*\)",
                                     step.get("script", ""))
                assert spliced == [], (obj["metadata"]["name"], step["name"])


def test_a_ref_holding_shell_code_stays_text(tmp_path):
    pwned = tmp_path / "pwned"
    ref = f"refs/tags/$(touch {pwned})`touch {pwned}`"
    (tmp_path / "home").mkdir()
    (tmp_path / "source").mkdir()
    result = tekton_runner.run_task(by_kind("Task", "fnops-ship"), params={"env": "dev", "git-ref": ref},
                                    workspaces={"source": str(tmp_path / "source"), "dockerconfig": None},
                                    image_env=image_env(str(tmp_path / "home")))
    assert result.succeeded and f"'{ref}' is not a branch" in result.log, result.log
    assert not pwned.exists()


def test_the_task_image_installs_fnops_from_the_lock_only():
    with open(os.path.join(TEKTON, "Dockerfile")) as f:
        text = f.read()
    installs = re.findall(r"pip install[^\n]*", text)
    assert installs == ["pip install --no-cache-dir --disable-pip-version-check --require-hashes --no-deps "
                        "-r /src/requirements.lock \\",
                        "pip install --no-cache-dir --disable-pip-version-check --no-deps --no-build-isolation /src \\"]
    assert re.search(r"apt-get install -y --no-install-recommends buildah git ", text)
    task_env = {e["name"]: e.get("value") for e in by_kind("Task", "fnops-ship")["spec"]["steps"][0]["env"]}
    assert task_env["BUILDAH_ISOLATION"] == "chroot" and image_env("/")["BUILDAH_ISOLATION"] == "chroot"


RUNNER_TASK = """
apiVersion: tekton.dev/v1
kind: Task
metadata: {name: probe}
spec:
  params:
    - {name: who, type: string}
    - {name: greeting, type: string, default: hello}
  workspaces:
    - {name: out}
    - {name: cache, optional: true}
  results:
    - {name: said}
  steps:
    - name: first
      image: busybox
      env:
        - {name: WHO, value: '$(params["who"])'}
        - {name: CACHE_BOUND, value: $(workspaces.cache.bound)}
        - {name: CACHE_PATH, value: '[$(workspaces.cache.path)]'}
      script: |
        echo "$$" > "$(workspaces.out.path)/first.pid"
        printf '%s %s %s %s' "$(params.greeting)" "$WHO" "$CACHE_BOUND" "$CACHE_PATH" > "$(results.said.path)"
        false
        echo "set -e stops a script without a shebang before this line"
      onError: continue
    - name: second
      image: busybox
      command: [sh, -c, 'echo $$ > $0/second.pid; exit 3', $(workspaces.out.path)]
    - name: never
      image: busybox
      script: touch $(workspaces.out.path)/never
"""


def test_the_runner_substitutes_and_sequences_as_tekton_does(tmp_path):
    """Defaults under given params, the bracket form, an unbound optional workspace, a
    result path; the preamble's set -e; onError continue; the first failure ends the run."""
    out = tmp_path / "out"
    out.mkdir()
    task = yaml.safe_load(RUNNER_TASK)
    r = tekton_runner.run_task(task, params={"who": "ada"}, workspaces={"out": str(out), "cache": None},
                               image_env={"PATH": os.environ["PATH"]})
    assert not r.succeeded and [s.name for s in r.steps] == ["first", "second"]
    assert [s.returncode for s in r.steps] == [1, 3] and "set -e stops" not in r.log
    assert r.results == {"said": "hello ada false []"}
    assert (out / "first.pid").read_text() != (out / "second.pid").read_text()  # a process each
    assert not (out / "never").exists()
    with pytest.raises(tekton_runner.TaskRunFailed, match="missing parameter 'who'"):
        tekton_runner.run_task(task, params={}, workspaces={"out": str(out)}, image_env={})
