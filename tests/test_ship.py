"""fnops ship for real: buildah builds from a base image served by a local docker-registry,
pushes there, and the digest pinned in Git is the one the registry serves."""

import json
import os
import subprocess
import time
import urllib.request

import pytest
import yaml

import containers
from conftest import fnops, stop_process
from gitrepo import clone, git, head, show

pytestmark = pytest.mark.skipif(containers.have_tools() is not None,
                                reason=f"needs {containers.have_tools()} (installed by .ci/run)")

HANDLER = 'def handle(event, context):\n    return {"hello": event}\n'
DOCKERFILE = "ARG BASE\nFROM {base}\nCOPY hello.txt /hello.txt\nCMD [\"cat\", \"/hello.txt\"]\n"


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    with containers.registry_with_base(str(tmp_path_factory.mktemp("registry"))) as rb:
        yield rb


@pytest.fixture
def repo(tmp_path, registry):
    """A functions repo with one python function and one Dockerfile function, and its origin."""
    reg, base = registry
    bare = str(tmp_path / "origin.git")
    git(tmp_path, "init", "--quiet", "--bare", "--initial-branch=main", bare)
    work = tmp_path / "work"
    git(tmp_path, "init", "--quiet", "--initial-branch=main", str(work))
    hello = work / "functions" / "hello"
    (hello / "releases").mkdir(parents=True)
    (hello / "function.yaml").write_text("# the hello function\nruntime: python3.11\n")
    (hello / "handler.py").write_text(HANDLER)
    (hello / "requirements.txt").write_text("# none\n")
    cat = work / "functions" / "cat"
    cat.mkdir(parents=True)
    (cat / "function.yaml").write_text("runtime: dockerfile\nhttp: {visibility: cluster-local}\n")
    (cat / "Dockerfile").write_text(DOCKERFILE.format(base=base))
    (cat / "hello.txt").write_text("hi\n")
    git(work, "add", "-A")
    git(work, "commit", "--quiet", "-m", "functions")
    git(work, "remote", "add", "origin", bare)
    git(work, "push", "--quiet", "origin", "main")
    return str(work), bare


def all_tags(reg):
    return {n: reg.tags(f"fns/{n}") for n in ("cat", "hello")}


def ship(work, registry, *args, env="dev", sha=None, **extra_env):
    """`fnops ship` as the action runs it: GITHUB_SHA is the checked-out commit."""
    reg, base = registry
    return fnops("ship", "--env", env, "--registry", f"{reg.host}/fns", "--base-image", base,
                 "--output", "json", *args, cwd=work,
                 env={"GITHUB_SHA": sha or head(work), "GITHUB_REPOSITORY": "acme/functions",
                      "GITHUB_REF": "refs/heads/main", **containers.BUILDAH_ENV, **extra_env}, timeout=600)


def test_ship_builds_pushes_and_pins_the_served_digest(repo, registry):
    work, bare = repo
    reg, _ = registry
    sha = head(work)
    r = ship(work, registry, "--all")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert sorted(f["function"] for f in out["functions"]) == ["cat", "hello"]
    assert out["commit"] == git(bare, "rev-parse", "main")
    for f in out["functions"]:
        served = reg.manifest_digest(f"fns/{f['function']}", f"sha-{sha[:7]}")
        assert f["digest"] == served
        pin = yaml.safe_load(show(bare, f"functions/{f['function']}/releases/dev.yaml"))
        assert pin["image"] == f"{reg.host}/fns/{f['function']}:sha-{sha[:7]}@{served}"
        when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(git(work, "show", "-s", "--format=%ct", sha))))
        assert pin["source"] == {"repo": "acme/functions", "commit": sha, "ref": "refs/heads/main", "time": when}
    assert git(bare, "rev-list", "--count", "main") == "2"  # one commit for both functions
    # What was pinned renders.
    check = clone(bare, os.path.join(os.path.dirname(work), "check"))
    rr = fnops("render", "functions/hello", "--env", "dev", cwd=check)
    assert rr.returncode == 0 and f"{reg.host}/fns/hello:sha-{sha[:7]}@sha256:" in rr.stdout


def test_the_built_python_image_serves_http(repo, registry):
    """Run the pushed image's server with buildah (chroot: it shares this host's loopback)."""
    work, bare = repo
    reg, _ = registry
    assert ship(work, registry, "--all").returncode == 0
    env = {**os.environ, **containers.BUILDAH_ENV}
    ref = f"{reg.host}/fns/hello:sha-{head(work)[:7]}"
    c = subprocess.run(["buildah", "from", "--tls-verify=false", ref], env=env, capture_output=True, text=True,
                       check=True).stdout.strip()
    port = containers.free_port()
    proc = subprocess.Popen(["buildah", "run", "--env", f"PORT={port}", "--env", "HOST=127.0.0.1", c, "--",
                             "python", "/opt/fnops/server.py"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        body = None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and body is None:
            try:
                req = urllib.request.Request(f"http://127.0.0.1:{port}/", data=b'"world"',
                                             headers={"content-type": "application/json"})
                with urllib.request.urlopen(req, timeout=2) as resp:
                    body = json.load(resp)
            except OSError:
                time.sleep(0.2)
        assert body == {"hello": "world"}, proc.stderr.read() if proc.poll() is not None else "no answer"
    finally:
        proc.terminate()
        try:
            proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
        subprocess.run(["buildah", "rm", c], env=env, capture_output=True)


def test_since_ships_only_changed_functions_and_ignores_release_only_changes(repo, registry):
    work, bare = repo
    reg, _ = registry
    base = git(work, "rev-parse", "HEAD")
    with open(os.path.join(work, "functions/hello/handler.py"), "a") as f:
        f.write("# changed\n")
    with open(os.path.join(work, "functions/cat/releases.md"), "w") as f:
        f.write("not the releases folder\n")
    os.makedirs(os.path.join(work, "functions/cat/releases"), exist_ok=True)
    git(work, "add", "-A")
    git(work, "commit", "--quiet", "-m", "change hello")
    r = ship(work, registry, "--since", base)
    assert r.returncode == 0, r.stderr
    assert sorted(f["function"] for f in json.loads(r.stdout)["functions"]) == ["cat", "hello"]
    git(work, "pull", "--quiet", "--rebase", "origin", "main")
    tip = head(work)
    r = ship(work, registry, "--since", tip)  # only releases/ changed since then
    assert r.returncode == 0 and json.loads(r.stdout) == {"functions": [], "skipped": [], "commit": None,
                                                          "dryRun": False, "pullRequest": None}


def test_dry_run_builds_but_pushes_and_commits_nothing(repo, registry):
    work, bare = repo
    reg, _ = registry
    head = git(bare, "rev-parse", "main")
    tags_before = reg.tags("fns/hello")
    r = ship(work, registry, "--all", "--dry-run")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["dryRun"] and all(not f["pushed"] and f["digest"] is None for f in out["functions"])
    assert git(bare, "rev-parse", "main") == head
    assert reg.tags("fns/hello") == tags_before


def test_registry_down_is_one_line_exit_1_and_no_commit(repo, registry):
    work, bare = repo
    _, base = registry
    tip = git(bare, "rev-parse", "main")
    dead = f"127.0.0.1:{containers.free_port()}"
    r = fnops("ship", "--env", "dev", "--registry", f"{dead}/fns", "--base-image", base, "--all", cwd=work,
              env={"GITHUB_SHA": head(work), **containers.BUILDAH_ENV}, timeout=600)
    assert r.returncode == 1
    assert len(r.stderr.strip().splitlines()) == 1 and "registry unreachable" in r.stderr, r.stderr
    assert git(bare, "rev-parse", "main") == tip


def test_spec_error_stops_before_building(repo, registry):
    work, bare = repo
    reg, _ = registry
    with open(os.path.join(work, "functions/hello/function.yaml"), "a") as f:
        f.write("scale: {min: 3, max: 1}\n")
    before = all_tags(reg)
    r = ship(work, registry, "--all")
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr == "functions/hello/function.yaml:3:22: scale.max: max (1) is below min (3); set max ≥ min, or 0 for unlimited\n"
    assert all_tags(reg) == before
    assert git(bare, "rev-list", "--count", "main") == "1"


def test_spec_errors_become_github_annotations(repo, registry):
    work, _ = repo
    with open(os.path.join(work, "functions/hello/function.yaml"), "a") as f:
        f.write("scael: {}\n")
    r = fnops("validate", "functions", cwd=work, env={"GITHUB_ACTIONS": "true"})
    assert r.returncode == 2
    assert "::error file=functions/hello/function.yaml,line=3,col=1::scael: unknown key; did you mean 'scale'?" in r.stdout


@pytest.mark.parametrize("jobs", ["1", "4"])
def test_build_failure_pushes_nothing(repo, registry, jobs):
    """One broken build among others, one at a time or in parallel: nothing pushed or pinned,
    and the build's own last lines (where pip or the RUN step said why) are shown."""
    work, bare = repo
    reg, _ = registry
    with open(os.path.join(work, "functions/cat/Dockerfile"), "a") as f:
        f.write("RUN exit 3\n")
    before = all_tags(reg)
    r = ship(work, registry, "--all", "--jobs", jobs)
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 1 and lines[-1].startswith("fnops: build of") and "cat" in lines[-1]
    assert any(line.startswith("  | ") and "exit status 3" in line for line in lines[:-1]), r.stderr
    assert all_tags(reg) == before
    assert git(bare, "rev-list", "--count", "main") == "1"

# --- the action ---------------------------------------------------------------------------

def run_action(work, tmp_path, extra_env=None, **inputs):
    """The composite action, every step, as the runner runs it (tests/gha_runner.py): inputs
    as env, GITHUB_OUTPUT read with the runner's reader, workflow commands parsed. -> (the
    ship step as a CompletedProcess, the action's outputs, the step summary file)."""
    import gha_runner
    from conftest import ROOT

    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("ARGOCD_", "FNOPS_", "GITHUB_"))},
           **containers.BUILDAH_ENV, "GITHUB_SHA": head(work), "GITHUB_REF": "refs/heads/main", **(extra_env or {})}
    stubs, _ = gha_runner.fnops_stubs(str(tmp_path / "stubs"))
    res = gha_runner.run_action(os.path.join(ROOT, "action.yml"), inputs, workspace=work,
                                temp=str(tmp_path / "runner"), env=env, uses=stubs)
    ship = res.step("ship")
    summary = tmp_path / "summary.md"
    summary.write_text(res.summary)
    r = subprocess.CompletedProcess(["action.yml"], ship.code, ship.stdout, ship.stderr)
    return r, res.outputs, summary


def test_the_action_runs_fnops_ship_and_sets_outputs_and_summary(repo, registry, tmp_path):
    """The composite action's own script, run the way a runner would (inputs as env)."""
    work, bare = repo
    reg, base = registry
    r, outputs, summary = run_action(work, tmp_path, env="dev", registry=f"{reg.host}/fns", tool="buildah",
                                     base_image=base, token="ghs_secret_token_value_123",
                                     labels="org.opencontainers.image.vendor=acme\nteam=payments",
                                     build_args="EXTRA=1", jobs="2")
    assert r.returncode == 0, r.stderr
    assert "::add-mask::ghs_secret_token_value_123" in r.stderr  # on the stream build output is fenced on
    assert outputs["commit"] == git(bare, "rev-parse", "main")
    functions = json.loads(outputs["functions"])
    assert sorted(f["function"] for f in functions) == ["cat", "hello"]
    digests = json.loads(outputs["digests"])
    assert digests == {f["function"]: f["digest"] for f in functions} and outputs["count"] == "2"
    assert outputs["digest"] == "" and outputs["image"] == ""  # more than one function: no single value
    assert "| `hello` |" in summary.read_text()
    assert "ghs_secret_token_value_123" not in git(bare, "log", "--format=%B", "main")
    config = json.loads(subprocess.run(["skopeo", "inspect", "--tls-verify=false", "--config",
                                        f"docker://{reg.host}/fns/hello@{digests['hello']}"],
                                       capture_output=True, text=True, check=True).stdout)
    assert config["config"]["Labels"]["team"] == "payments"  # labels reached the image


def test_the_action_builds_one_function_for_a_platform_and_outputs_its_digest(repo, registry, tmp_path):
    """A matrix job: one function, a platform (a manifest list), no pin; build-push-action's
    single `digest` output is set."""
    import platform as host

    work, bare = repo
    reg, base = registry
    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(host.machine(), host.machine())
    tip = git(bare, "rev-parse", "main")
    r, outputs, _ = run_action(work, tmp_path, env="dev", registry=f"{reg.host}/fns", tool="buildah",
                               base_image=base, function="hello", pin="false", platforms=f"linux/{arch}")
    assert r.returncode == 0, r.stderr
    assert outputs["digest"].startswith("sha256:") and outputs["image"].endswith("@" + outputs["digest"])
    assert reg.manifest_digest("fns/hello", f"sha-{head(work)[:7]}") == outputs["digest"]
    assert outputs["commit"] == "" and git(bare, "rev-parse", "main") == tip


def test_the_action_plans_a_matrix_without_building(repo, registry, tmp_path):
    work, _ = repo
    reg, base = registry
    tags = all_tags(reg)
    r, outputs, _ = run_action(work, tmp_path, env="dev", registry=f"{reg.host}/fns", tool="buildah", plan="true")
    assert r.returncode == 0, r.stderr
    assert sorted(i["function"] for i in json.loads(outputs["plan"])) == ["cat", "hello"] and outputs["count"] == "2"
    assert all_tags(reg) == tags


def test_multi_platform_command_lines(monkeypatch, tmp_path):
    """Building for another architecture needs qemu here; the command lines are what they promise."""
    from fnops.delivery.build import Buildah, Docker

    b = Buildah(platforms=("linux/amd64", "linux/arm64"), labels=("team=x",))
    cmd = b.command("/ctx", "/ctx/Dockerfile", "r.example/fns/hello:sha-1", timestamp=1)
    assert cmd[cmd.index("--platform") + 1] == "linux/amd64,linux/arm64"
    assert cmd[cmd.index("--manifest") + 1] == "r.example/fns/hello:sha-1" and "-t" not in cmd
    assert cmd[cmd.index("--label") + 1] == "team=x" and "--timestamp=1" in cmd
    assert b.push_command("r.example/fns/hello:sha-1", "/d")[:6] == [
        "buildah", "--storage-driver", "vfs", "manifest", "push", "--all"]
    (tmp_path / "docker").write_text("#!/bin/sh\nexit 0\n")
    (tmp_path / "docker").chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    d = Docker(platforms=("linux/amd64", "linux/arm64"), instance="ci", cache_from=("type=registry,ref=x",),
               gha_cache=True)
    cmd = d.command("/c", "/c/D", "r:t", "/m", scope="s")
    assert cmd[:5] == ["docker", "buildx", "build", "--builder", "ci"]
    assert cmd[cmd.index("--platform") + 1] == "linux/amd64,linux/arm64"
    assert cmd.count("--cache-from") == 1 and "type=gha" not in " ".join(cmd)  # an explicit cache wins


def test_the_action_rejects_a_missing_env_input_itself(repo, tmp_path):
    work, _ = repo
    r, _, _ = run_action(work, tmp_path, env="")
    assert r.returncode == 2 and "Invalid value for '--env'" in r.stderr


# --- the ledger: pins anchor what needs shipping ------------------------------------------

def _commit(work, path, text, mode="a"):
    with open(os.path.join(work, path), mode) as f:
        f.write(text)
    git(work, "commit", "--quiet", "-am", f"edit {path}")
    git(work, "push", "--quiet", "origin", "HEAD:main")
    return head(work)


def _sync(work):
    """Bring the clone up to the tip (the pin commits fnops pushed)."""
    git(work, "pull", "--quiet", "--rebase", "origin", "main")


def test_a_rerun_on_an_unchanged_tree_builds_and_commits_nothing(repo, registry):
    work, bare = repo
    reg, _ = registry
    first = json.loads(ship(work, registry).stdout)
    assert sorted((f["function"], f["reason"]) for f in first["functions"]) == [("cat", "unpinned"), ("hello", "unpinned")]
    tip, tags = git(bare, "rev-parse", "main"), all_tags(reg)
    again = ship(work, registry)  # the same run again (a re-run), before or after pulling the pins
    assert again.returncode == 0, again.stderr
    out = json.loads(again.stdout)
    assert out["functions"] == [] and out["commit"] is None
    assert [(s["function"], s["why"]) for s in out["skipped"]] == [("cat", "up-to-date"), ("hello", "up-to-date")]
    _sync(work)
    assert json.loads(ship(work, registry).stdout)["functions"] == []
    assert git(bare, "rev-parse", "main") == tip and all_tags(reg) == tags


def test_the_same_source_gives_the_same_digest_on_a_fresh_builder(repo, registry, tmp_path):
    """Two ships of one commit — the second on an empty image store, as another runner —
    push the same digest, so the second pins nothing."""
    work, bare = repo
    first = json.loads(ship(work, registry, "--all").stdout)
    tip = git(bare, "rev-parse", "main")
    conf = tmp_path / "storage.conf"
    conf.write_text(f'[storage]\ndriver = "vfs"\ngraphroot = "{tmp_path}/graph"\nrunroot = "{tmp_path}/run"\n')
    again = ship(work, registry, "--all", CONTAINERS_STORAGE_CONF=str(conf))
    assert again.returncode == 0, again.stderr
    second = json.loads(again.stdout)
    digests = lambda out: {f["function"]: f["digest"] for f in out["functions"]}  # noqa: E731
    assert digests(second) == digests(first)
    assert second["commit"] is None and git(bare, "rev-parse", "main") == tip
    assert os.listdir(tmp_path / "graph")  # it really built in the fresh store


def test_a_failed_run_is_picked_up_by_the_next_push(repo, registry):
    work, bare = repo
    assert ship(work, registry).returncode == 0
    _sync(work)
    with open(os.path.join(work, "functions/cat/Dockerfile"), "a") as f:
        f.write("RUN exit 3\n")
    _commit(work, "functions/hello/handler.py", "# a fix for hello\n")  # hello changed, cat broken
    assert ship(work, registry).returncode == 1  # nothing pinned: hello's release is pending
    with open(os.path.join(work, "functions/cat/Dockerfile")) as f:
        fixed = f.read().replace("RUN exit 3\n", "# fixed\n")
    after = _commit(work, "functions/cat/Dockerfile", fixed, mode="w")  # the next push touches cat only
    r = ship(work, registry)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert sorted((f["function"], f["reason"]) for f in out["functions"]) == [("cat", "changed"), ("hello", "changed")]
    pin = yaml.safe_load(show(bare, "functions/hello/releases/dev.yaml"))
    assert pin["source"]["commit"] == after


def test_out_of_order_runs_and_old_reruns_never_pin_older_code(repo, registry):
    work, bare = repo
    assert ship(work, registry).returncode == 0
    _sync(work)
    older = _commit(work, "functions/hello/handler.py", "# one\n")
    newer = _commit(work, "functions/hello/handler.py", "# two\n")
    assert ship(work, registry, sha=newer).returncode == 0  # the newer run finishes first
    tip = git(bare, "rev-parse", "main")
    git(work, "checkout", "--quiet", "--detach", older)  # the older run (or a re-run of it) finishes now
    late = ship(work, registry, sha=older)
    assert late.returncode == 0, late.stderr
    out = json.loads(late.stdout)
    assert out["functions"] == [] and ("hello", "pinned-newer") in [(s["function"], s["why"]) for s in out["skipped"]]
    # One push's diff: built, then found older than the pin at the tip — a late run, not a failure.
    forced_diff = ship(work, registry, "--since", f"{older}~1", sha=older)
    assert forced_diff.returncode == 0, forced_diff.stderr
    out = json.loads(forced_diff.stdout)
    assert [(f["function"], f["reason"]) for f in out["functions"]] == [("hello", "pinned-newer")]
    assert ("hello", "pinned-newer") in [(s["function"], s["why"]) for s in out["skipped"]] and out["commit"] is None
    reg, base = registry
    text = fnops("ship", "--env", "dev", "--registry", f"{reg.host}/fns", "--base-image", base, "--since",
                 f"{older}~1", cwd=work, env={"GITHUB_SHA": older, "GITHUB_ACTIONS": "true", **containers.BUILDAH_ENV},
                 timeout=600)
    assert text.returncode == 0, text.stderr
    assert "::notice::hello [dev] skipped: pinned-newer" in text.stdout.splitlines()
    assert git(bare, "rev-parse", "main") == tip
    assert yaml.safe_load(show(bare, "functions/hello/releases/dev.yaml"))["source"]["commit"] == newer


def test_status_marks_stale_pins_and_plan_lists_the_work(repo, registry, tmp_path):
    work, bare = repo
    reg, _ = registry
    assert ship(work, registry).returncode == 0
    _sync(work)
    changed = _commit(work, "functions/hello/handler.py", "# new\n")
    rows = json.loads(fnops("status", "--output", "json", cwd=work).stdout)
    assert {(r["function"], r["stale"]) for r in rows} == {("cat", False), ("hello", True)}
    assert "stale: folder changed since this source" in fnops("status", cwd=work).stdout
    tags, out_file = all_tags(reg), tmp_path / "out"
    r = ship(work, registry, "--plan", GITHUB_OUTPUT=str(out_file))
    assert r.returncode == 0, r.stderr
    plan = json.loads(r.stdout)
    pinned = yaml.safe_load(show(bare, "functions/hello/releases/dev.yaml"))["source"]["commit"]
    assert plan["plan"] == [{"function": "hello", "environment": "dev", "reason": "changed",
                             "sourceCommit": changed, "pinnedCommit": pinned, "test": None}]
    assert [s["function"] for s in plan["skipped"]] == ["cat"]
    assert all_tags(reg) == tags  # nothing built or pushed
    import gha_runner

    assert json.loads(dict(gha_runner.read_key_values(str(out_file)))["plan"]) == plan["plan"]


def test_approval_required_is_never_bypassed_silently(repo, registry):
    work, bare = repo
    reg, _ = registry
    _commit(work, "functions/hello/function.yaml", "environments: {prod: {approval: required}}\n")
    tags, tip = all_tags(reg), git(bare, "rev-parse", "main")
    r = ship(work, registry, "--mode", "push", env="prod")
    assert r.returncode == 2 and "environment 'prod' requires approval for hello" in r.stderr, r.stderr
    assert all_tags(reg) == tags and git(bare, "rev-parse", "main") == tip  # refused before building
    r = ship(work, registry, env="prod")  # the default for a gated environment is a pull request
    assert r.returncode == 2 and "PR mode needs a token" in r.stderr
    assert git(bare, "rev-parse", "main") == tip
    r = ship(work, registry, "--mode", "push", "--approved", env="prod")
    assert r.returncode == 0, r.stderr
    assert "hello" in {f["function"] for f in json.loads(r.stdout)["functions"]}


def test_docker_dry_run_never_pushes(repo, registry, tmp_path):
    """A stand-in `docker` records its command lines: a dry run asks buildx for no push."""
    work, _ = repo
    log = tmp_path / "docker.log"
    shim = tmp_path / "bin" / "docker"
    shim.parent.mkdir()
    shim.write_text(f"#!/bin/sh\nprintf '%s\\n' \"$*\" >> {log}\nexit 0\n")
    shim.chmod(0o755)
    r = ship(work, registry, "--all", "--dry-run", "--builder", "docker",
             PATH=f"{shim.parent}{os.pathsep}{os.environ['PATH']}")
    assert r.returncode == 0, r.stderr
    lines = log.read_text().splitlines()
    assert len(lines) == 2 and all("buildx build" in line for line in lines)
    assert not any("--push" in line or "type=registry" in line or "push=true" in line for line in lines)
    assert all("--output type=cacheonly" in line for line in lines)
    assert all(not f["pushed"] for f in json.loads(r.stdout)["functions"])


def test_fnops_run_serves_a_dockerfile_function_through_buildah(repo, registry, tmp_path):
    work, _ = repo
    _, base = registry
    web = os.path.join(work, "functions", "web")
    os.makedirs(web)
    with open(os.path.join(web, "function.yaml"), "w") as f:
        f.write("runtime: dockerfile\nenv: {GREETING: hi}\n")
    with open(os.path.join(web, "Dockerfile"), "w") as f:
        f.write(f"FROM {base}\nWORKDIR /srv\nCOPY index.html /srv/index.html\n"
                'CMD ["sh", "-c", "echo $GREETING > /srv/greeting.txt; exec python3 -m http.server $PORT"]\n')
    with open(os.path.join(web, "index.html"), "w") as f:
        f.write("<h1>served by buildah</h1>\n")
    port = containers.free_port()
    log = open(tmp_path / "run.log", "w")
    proc = subprocess.Popen(["fnops", "run", "web", "--port", str(port), "--no-reload"], cwd=work,
                            env={**os.environ, **containers.BUILDAH_ENV}, stdout=subprocess.DEVNULL, stderr=log)
    try:
        deadline, body = time.monotonic() + 120, None
        while time.monotonic() < deadline and body is None:
            assert proc.poll() is None, (tmp_path / "run.log").read_text()
            r = fnops("invoke", "--url", f"http://127.0.0.1:{port}/index.html", cwd=work)
            body = r.stdout if r.returncode == 0 else None
            time.sleep(0.3)
        assert body and "served by buildah" in body
        r = fnops("invoke", "--url", f"http://127.0.0.1:{port}/greeting.txt", cwd=work)
        assert r.stdout.strip() == "hi"  # the function's env reached the container
    finally:
        stop_process(proc)
        log.close()


def test_a_matrix_fans_out_from_the_plan_and_pins_everything_in_one_commit(repo, registry, tmp_path):
    """What the matrix workflow does: --plan lists the work, each job builds one function
    without pinning, the last job pins every result in one commit."""
    work, bare = repo
    plan = json.loads(ship(work, registry, "--plan").stdout)["plan"]
    assert sorted(i["function"] for i in plan) == ["cat", "hello"]
    files = []
    for item in plan:
        r = ship(work, registry, "--no-pin", "--function", item["function"])
        assert r.returncode == 0, r.stderr
        (tmp_path / f"{item['function']}.json").write_text(r.stdout)
        files.append(str(tmp_path / f"{item['function']}.json"))
        assert [f["function"] for f in json.loads(r.stdout)["functions"]] == [item["function"]]
    before = int(git(bare, "rev-list", "--count", "main"))
    r = fnops("pin", "--env", "dev", "--registry", f"{registry[0].host}/fns", *files, "--output", "json", cwd=work,
              env={"GITHUB_SHA": head(work)})
    assert r.returncode == 0, r.stderr
    assert int(git(bare, "rev-list", "--count", "main")) == before + 1
    assert sorted(f["function"] for f in json.loads(r.stdout)["functions"]) == ["cat", "hello"]
    assert json.loads(ship(work, registry, "--plan").stdout)["plan"] == []  # the ledger says: all shipped
    # The matrix's pin job re-run after a newer push pinned newer code: skipped, not failed.
    old = head(work)
    _sync(work)
    newer = _commit(work, "functions/hello/handler.py", "# newer\n")
    assert ship(work, registry, sha=newer).returncode == 0
    tip = git(bare, "rev-parse", "main")
    git(work, "checkout", "--quiet", "--detach", old)
    late = fnops("pin", "--env", "dev", "--registry", f"{registry[0].host}/fns", *files, "--output", "json", cwd=work,
                 env={"GITHUB_SHA": old})
    assert late.returncode == 0, late.stderr
    out = json.loads(late.stdout)
    assert out["commit"] is None and {"function": "hello", "environment": "dev", "why": "pinned-newer"} in out["skipped"]
    assert git(bare, "rev-parse", "main") == tip


def test_parallel_builds_give_the_same_images_as_one_at_a_time(repo, registry):
    work, _ = repo
    one = json.loads(ship(work, registry, "--all", "--no-pin", "--jobs", "1").stdout)["functions"]
    many = json.loads(ship(work, registry, "--all", "--no-pin", "--jobs", "4").stdout)["functions"]
    digests = lambda rows: {r["function"]: r["digest"] for r in rows}  # noqa: E731
    assert digests(one) == digests(many) and len(one) == 2
