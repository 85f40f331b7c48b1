"""Every action.yml validates against the GitHub Action schema and never expands
`${{ }}` inside `run:` (inputs reach the CLI only through env:)."""

import glob
import json
import os
import re

import jsonschema
import pytest
import yaml

import schemas
from conftest import ROOT

ACTIONS = [os.path.join(ROOT, "action.yml")] + sorted(glob.glob(os.path.join(ROOT, "actions", "*", "action.yml")))


@pytest.mark.parametrize("path", ACTIONS, ids=lambda p: os.path.relpath(p, ROOT))
def test_action_matches_schema_and_passes_inputs_through_env(path):
    with open(os.path.join(schemas.schema_dir(), "apis", "github-action.json")) as f:
        schema = json.load(f)
    with open(path) as f:
        action = yaml.safe_load(f)
    jsonschema.validate(action, schema)
    for step in action["runs"].get("steps", []):
        assert "${{" not in step.get("run", ""), step
        uses = step.get("uses")
        if uses and not uses.startswith("./"):
            assert re.fullmatch(r"[\w.-]+/[\w./-]+@[0-9a-f]{40}", uses), f"not pinned by SHA: {uses}"


# --- the actions run as the runner runs them (tests/gha_runner.py) ----------------------

import subprocess  # noqa: E402

import gha_runner  # noqa: E402
from gitrepo import git, head  # noqa: E402

DIGEST_OK = "sha256:" + "7" * 64

# A build log that tries every way a line can become a workflow command on a real runner:
# V2 commands after leading whitespace, legacy `##[cmd]` anywhere in a line, a carriage
# return starting a new line, a stop-commands of its own (and its resume), group markers,
# masks that would make the log unreadable, and outputs that would replace the real ones.
FORGED = [
    "::error file=functions/cat/Dockerfile,line=1::forged error",
    "   ::warning::forged warning after spaces",
    "\t::notice::forged notice after a tab",
    "Step 3/4 : RUN pip install ##[error]forged legacy error",
    "progress 10%\r::error::forged after a carriage return",
    "##[add-mask]sha256",
    "::add-mask::cat",
    "::set-output name=digest::sha256:" + "f" * 64,
    "x ##[set-output name=commit;]forged",
    "::stop-commands::evil1234",
    "::error::forged inside its own stop",
    "::evil1234::",
    "::endgroup::",
    "::group::forged group",
    "::save-state name=x::forged",
    "::ERROR::forged upper case",
]

DOCKER = """#!/bin/bash
printf '%s\\n' "$*" >> {log}
if [ "$1 $2" = "buildx inspect" ]; then printf 'Name: x\\nDriver: %s\\n' "${{FAKE_DRIVER:-docker-container}}"; exit 0; fi
if [ "$1 $2" = "buildx build" ]; then
  env | grep -E '^ACTIONS_' | sort >> {envlog} || true
  cat {forged}
  cat {forged} >&2
  digest={digest}
  if [ -n "${{FAKE_DIGEST_BY_ARGS:-}}" ]; then digest="sha256:$(printf '%s' "$*" | sha256sum | cut -c1-64)"; fi
  while [ $# -gt 0 ]; do
    if [ "$1" = --metadata-file ]; then printf '{{"containerimage.digest": "%s"}}' "$digest" > "$2"; fi
    shift
  done
  exit "${{FAKE_BUILD_EXIT:-0}}"
fi
exit 0
"""


def read(path) -> str:
    with open(path) as f:
        return f.read()


def _repo(tmp_path):
    bare = tmp_path / "origin.git"
    work = tmp_path / "work"
    git(tmp_path, "init", "--quiet", "--bare", "--initial-branch=main", str(bare))
    git(tmp_path, "init", "--quiet", "--initial-branch=main", str(work))
    cat = work / "functions" / "cat"
    (cat / "releases").mkdir(parents=True)
    (cat / "function.yaml").write_text("runtime: dockerfile\nhttp: {visibility: cluster-local}\n"
                                       "environments: {staging: {}}\n")
    (cat / "Dockerfile").write_text("FROM scratch\nCOPY hello.txt /hello.txt\n")
    (cat / "hello.txt").write_text("hi\n")
    git(work, "add", "-A")
    git(work, "commit", "--quiet", "-m", "functions")
    git(work, "remote", "add", "origin", str(bare))
    git(work, "push", "--quiet", "origin", "main")
    return str(work), str(bare)


@pytest.fixture
def job(tmp_path):
    """A job's workspace (a functions repo and its origin), a stand-in docker, and the runner."""
    work, bare = _repo(tmp_path)
    bin_ = tmp_path / "bin"
    bin_.mkdir()
    forged = tmp_path / "forged.log"
    forged.write_text("\n".join(FORGED) + "\n")
    log, envlog = tmp_path / "docker.log", tmp_path / "docker-env.log"
    (bin_ / "docker").write_text(DOCKER.format(log=log, envlog=envlog, forged=forged, digest=DIGEST_OK))
    (bin_ / "docker").chmod(0o755)
    calls = []
    stubs, pip_log = gha_runner.fnops_stubs(str(tmp_path / "stubs"), calls)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ARGOCD_", "FNOPS_", "GITHUB_", "ACTIONS_"))}
    env.update(PATH=f"{bin_}{os.pathsep}{os.environ['PATH']}", GITHUB_SHA=head(work), GITHUB_REF="refs/heads/main",
               GITHUB_REPOSITORY="acme/functions", GITHUB_SERVER_URL="https://github.com")

    class Job:
        pass

    j = Job()
    j.work, j.bare, j.calls, j.pip_log, j.docker_log, j.docker_env = work, bare, calls, pip_log, log, envlog
    j.tmp = tmp_path

    def run(action="action.yml", order="stderr-first", github=None, extra_env=None, **inputs):
        if action == "action.yml" and "tool" not in inputs:
            inputs.setdefault("builder", "docker")  # the stand-in docker above (the action's default is buildah)
        return gha_runner.run_action(os.path.join(ROOT, action), inputs, workspace=work,
                                     temp=str(tmp_path / f"runner-{len(calls)}"), env={**env, **(extra_env or {})},
                                     github={"token": "ghs_job_token_0123456789abcdef", **(github or {})},
                                     uses=stubs, order=order)

    j.run = run
    return j


@pytest.mark.parametrize("order", ["stderr-first", "stdout-first"])
def test_forged_commands_in_a_build_log_do_nothing(job, order):
    """The action, start to end: the builder's output is streamed, and not one of its lines
    becomes an annotation, a mask, an output, a group or a stopped command stream — whatever
    order the runner reads stdout and stderr in."""
    r = job.run(env="dev", registry="ghcr.io/acme/fns", all="true", order=order)
    ship = r.step("ship")
    assert r.ok, ship.stderr
    assert [a for a in r.annotations if "forged" in a.message] == []
    assert not any(m in ("sha256", "cat", "evil1234") for m in r.masks)
    assert ship.outputs["digest"] == DIGEST_OK and ship.outputs["commit"] == git(job.bare, "rev-parse", "main")
    assert r.outputs["digest"] == DIGEST_OK and json.loads(r.outputs["digests"]) == {"cat": DIGEST_OK}
    assert "x" not in ship.outputs  # no save-state, no set-output got through
    shown = "\n".join(ship.log)
    assert "cat | ::error file=functions/cat/Dockerfile,line=1::forged error" in shown  # streamed, as text
    assert "cat | Step 3/4 : RUN pip install ##[error]forged legacy error" in shown
    assert "forged group" not in "".join(f"[group] {g}" for g in [])  # groups: only fnops' own
    assert [line for line in ship.log if line.startswith("[group]")] == [
        "[group] fnops: builder output (untrusted: workflow commands are off)"]
    assert "| `cat` |" in r.summary


@pytest.mark.parametrize("order", ["stderr-first", "stdout-first"])
def test_a_failed_build_shows_its_tail_and_still_forges_nothing(job, order):
    r = job.run(env="dev", registry="ghcr.io/acme/fns", all="true", order=order,
                extra_env={"FAKE_BUILD_EXIT": "3"})
    ship = r.step("ship")
    assert not r.ok and ship.outcome == "failure"
    assert [a for a in r.annotations if "forged" in a.message] == []
    assert not any(m in ("sha256", "cat", "evil1234") for m in r.masks)
    assert "  | ::ERROR::forged upper case" in ship.log  # the tail, as text
    assert any(line.startswith("fnops: build of ghcr.io/acme/fns/cat:sha-") for line in ship.log)
    assert git(job.bare, "rev-list", "--count", "main") == "1"  # nothing pinned


def test_the_action_installs_fnops_into_its_own_venv_and_leaves_the_job_alone(job):
    """M8: setup-python may not touch the job's environment; fnops is installed (hash-checked,
    from requirements.lock) into a venv under RUNNER_TEMP and called from there."""
    r = job.run(env="dev", registry="ghcr.io/acme/fns", plan="true")
    assert r.ok, r.step("ship").stderr
    setup = [w for a, w in job.calls if a == "actions/setup-python"]
    assert setup == [{"python-version": "3.12", "update-environment": "false"}]
    assert r.env == {} and r.path == []  # nothing for the job's later steps
    fnops_bin = r.step("install").outputs["fnops"]
    assert fnops_bin.startswith(str(job.tmp)) and fnops_bin.endswith("/bin/fnops")
    assert r.step("ship").env["FNOPS"] == fnops_bin
    pip = read(job.pip_log).splitlines()
    flags = "--disable-pip-version-check --quiet"
    assert pip == [f"{flags} install --require-hashes --no-deps -r {ROOT}/requirements.lock",
                   f"{flags} install --no-deps --no-build-isolation {ROOT}"]
    # a second fnops step in the same job reuses the venv: nothing installed again
    runner_temp = os.path.dirname(os.path.dirname(os.path.dirname(fnops_bin)))
    again = gha_runner.run_action(os.path.join(ROOT, "action.yml"),
                                  {"env": "dev", "plan": "true", "registry": "ghcr.io/acme/fns"},
                                  workspace=job.work, temp=runner_temp, env=r.step("ship").env,
                                  uses=gha_runner.fnops_stubs(str(job.tmp / "stubs"))[0])
    assert again.ok, [(s.id, s.outcome, s.stderr) for s in again.steps]
    assert again.step("install").outputs["fnops"] == fnops_bin
    assert len(read(job.pip_log).splitlines()) == 2


def test_a_failed_install_leaves_no_half_made_venv(job, tmp_path):
    """With pip unable to reach an index the install fails, and nothing half-installed is
    left for the next step to reuse (a real interpreter and pip here)."""
    import sys

    env = {"PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(tmp_path / "empty"), "RUNNER_TEMP": str(tmp_path / "rt"),
           "GITHUB_OUTPUT": str(tmp_path / "out"), "PATH": os.environ["PATH"]}
    (tmp_path / "empty").mkdir()
    (tmp_path / "rt").mkdir()
    p = subprocess.run(["bash", os.path.join(ROOT, "actions", "install-fnops.sh"), ROOT, sys.executable],
                       env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode != 0 and "requirements.lock" not in p.stdout
    assert os.listdir(tmp_path / "rt") == [] and not (tmp_path / "out").exists()


def test_the_docker_tool_gets_a_docker_container_builder_of_its_own(job):
    """F2: without a `builder`, setup-buildx-action makes one (docker-container, not made the
    job's default) and fnops builds with it."""
    r = job.run(env="dev", registry="ghcr.io/acme/fns", all="true")
    assert r.ok, r.step("ship").stderr
    assert [w for a, w in job.calls if a == "docker/setup-buildx-action"] == [
        {"driver": "docker-container", "use": "false"}]
    builds = [line for line in read(job.docker_log).splitlines() if line.startswith("buildx build")]
    assert builds and all(" --builder builder-fnops-test " in f" {b} " for b in builds)
    # a given builder is used as it is; buildah needs none
    job.calls.clear()
    assert job.run(env="dev", registry="ghcr.io/acme/fns", all="true", builder="mine").ok
    assert "docker/setup-buildx-action" not in [a for a, _ in job.calls]
    assert "--builder mine" in read(job.docker_log).splitlines()[-1]


def test_the_docker_driver_is_refused_before_building_what_it_cannot_do(job):
    r = job.run(env="dev", registry="ghcr.io/acme/fns", all="true", builder="default", gha_cache="true",
                extra_env={"FAKE_DRIVER": "docker"})
    ship = r.step("ship")
    assert ship.outcome == "failure"
    line, = [x for x in ship.stderr.splitlines() if x.startswith("fnops:") and not x.startswith("fnops: warning")]
    assert "uses the 'docker' driver, which cannot export a cache" in line and "docker/setup-buildx-action" in line
    assert not any(x.startswith("buildx build") for x in read(job.docker_log).splitlines())


def test_the_cache_service_token_reaches_fnops_step_and_no_other(job):
    """M7: the runtime token goes from github-script to fnops' step through a file that step
    removes; nothing is exported to the job ($GITHUB_ENV), and the token is masked."""
    r = job.run(env="dev", registry="ghcr.io/acme/fns", all="true", gha_cache="true")
    assert r.ok, r.step("ship").stderr
    seen = read(job.docker_env)
    assert f"ACTIONS_RUNTIME_TOKEN={gha_runner.RUNTIME_TOKEN}" in seen  # buildx got it
    assert "ACTIONS_CACHE_URL=https://cache.invalid/" in seen
    assert not any(k.startswith("ACTIONS_") for k in r.env)
    assert gha_runner.RUNTIME_TOKEN in r.masks
    token_file = r.step("runtime").outputs["file"]
    assert token_file.startswith(str(job.tmp)) and not os.path.exists(token_file)
    assert not any(gha_runner.RUNTIME_TOKEN in line for line in r.log)
    builds = [line for line in read(job.docker_log).splitlines() if line.startswith("buildx build")]
    assert "type=gha,mode=max,scope=fnops-cat" in builds[0]


def test_outputs_survive_any_value(tmp_path, monkeypatch):
    """C1: a random delimiter per value; the runner's own reader gets every value back."""
    from fnops.cli.gha import write_outputs

    out = tmp_path / "out"
    monkeypatch.setenv("GITHUB_OUTPUT", str(out))
    tricky = "line one\nFNOPS_EOF\ncommit<<X\nforged\nX\nghadelimiter_\n"
    write_outputs(commit="abc", body=tricky, empty="")
    assert dict(gha_runner.read_key_values(str(out))) == {"commit": "abc", "body": tricky, "empty": ""}


def test_approved_true_is_reported_with_the_setting_it_relies_on(job):
    """M2: fnops cannot see the job's Environment protection rules (the GitHub API subset it is
    built against has no environments endpoint), so `approved: true` is never silent."""
    gate = job.work + "/functions/cat/function.yaml"
    with open(gate, "w") as f:
        f.write("runtime: dockerfile\nenvironments: {prod: {approval: required}}\n")
    git(job.work, "commit", "--quiet", "-am", "prod needs approval")
    sha = head(job.work)
    r = job.run(env="prod", registry="ghcr.io/acme/fns", all="true", mode="push", approved="true",
                extra_env={"GITHUB_SHA": sha}, github={"event": {"repository": {"visibility": "private"}}})
    assert r.ok, r.step("ship").stderr
    warn, = [a for a in r.annotations if a.kind == "warning" and a.properties.get("title") == "fnops approval"]
    assert "Required reviewers and Prevent self-review" in warn.message and "mode: pr" in warn.message
    assert "private" in warn.message and "GitHub Enterprise" in warn.message


def test_the_pr_notice_knows_whether_the_token_is_github_token(job):
    r = job.run(env="dev", plan="true")
    assert r.step("ship").env["FNOPS_TOKEN_IS_GITHUB_TOKEN"] == "true"
    r = job.run(env="dev", plan="true", token="ghp_app_or_pat_token_value")
    assert r.step("ship").env["FNOPS_TOKEN_IS_GITHUB_TOKEN"] == "false"
    assert "ghp_app_or_pat_token_value" in r.masks  # the action masked it (on stderr)


# --- the parser itself, against the runner's own unit tests (ActionCommandManagerL0.cs) ---

def _feed(*lines):
    c = gha_runner.Commands([])
    for line in lines:
        c.feed(line)
    return c


def test_the_parser_reads_commands_where_the_runner_does():
    c = _feed("  ::error::after spaces", "text before ##[warning]legacy anywhere", "::NOTICE::any case",
              "::error file=a%3Ab.py,line=3::msg%0Anext")
    assert [(a.kind, a.message) for a in c.annotations] == [
        ("error", "after spaces"), ("warning", "legacy anywhere"), ("notice", "any case"), ("error", "msg\nnext")]
    assert c.annotations[3].properties == {"file": "a:b.py", "line": "3"}
    # a leading space (fnops' old "escaping") protects nothing
    assert [a.kind for a in _feed(" ::add-mask::x", " ::error::y").annotations] == ["error"]
    assert _feed(" ::add-mask::secret-value").masks == ["secret-value", "secret-value"]
    assert gha_runner.split_lines(b"a\rb\r\nc\n::error::d") == ["a", "b", "c", "::error::d"]


def test_the_parser_stops_and_resumes_as_the_runner_does():
    # ActionCommandManagerL0.StopProcessCommand_* : legacy and V2 forms
    c = _feed("##[stop-commands]stopToken", "##[error]ignored", "##[stopToken]", "##[error]processed")
    assert [a.message for a in c.annotations] == ["processed"]
    c = _feed("::stop-commands::validToken123", "::error::ignored", "::validToken123::", "::error::processed")
    assert [a.message for a in c.annotations] == ["processed"] and "validToken123" in c.masks
    assert c.log == ["::stop-commands::***", "::error::ignored", "::***::"]
    assert [a.message for a in _feed("::stop-commands::Tok1234", "::tok1234::", "::error::x").annotations] == ["x"]
    assert _feed("::stop-commands::error").errors  # a registered command is no token
    # a resume anywhere in a line (legacy form) resumes too: hence tokens nobody can guess
    c = _feed("::stop-commands::fnopsabcdef", "x ##[fnopsabcdef] y", "::error::after")
    assert [a.message for a in c.annotations] == ["after"]


def test_the_runners_file_command_reader_is_faithful():
    import tempfile

    with tempfile.NamedTemporaryFile("w", delete=False) as f:
        f.write("a=1\nb<<EOF\nx\ny\nEOF\nc=\n\nd<<Z\nZ\n")
    try:
        assert gha_runner.read_key_values(f.name) == [("a", "1"), ("b", "x\ny"), ("c", ""), ("d", "")]
    finally:
        os.unlink(f.name)


# --- every finer action, run the same way --------------------------------------------------

def _pin(bare, fn, env):
    out = subprocess.run(["git", "show", f"main:functions/{fn}/releases/{env}.yaml"], cwd=bare,
                         capture_output=True, text=True)
    return yaml.safe_load(out.stdout) if out.returncode == 0 else None


def test_every_finer_action_runs_as_the_runner_runs_it(job, tmp_path):
    by_args = {"FAKE_DIGEST_BY_ARGS": "1"}
    # build-push: builds and pushes, pins nothing
    r = job.run("actions/build-push/action.yml", env="dev", registry="ghcr.io/acme/fns", builder="b",
                extra_env=by_args)
    assert r.ok, r.step("build").stderr
    built = json.loads(r.outputs["functions"])
    assert [f["function"] for f in built] == ["cat"] and _pin(job.bare, "cat", "dev") is None
    # pin: what a matrix built, in one commit
    results = tmp_path / "results" / "fnops-cat"
    results.mkdir(parents=True)
    (results / "result-cat.json").write_text(json.dumps({"functions": built}))
    r = job.run("actions/pin/action.yml", env="dev", results=str(tmp_path / "results"), registry="ghcr.io/acme/fns")
    assert r.ok, r.step("pin").stderr
    assert r.outputs["commit"] == git(job.bare, "rev-parse", "main")
    assert _pin(job.bare, "cat", "dev")["image"] == built[0]["image"]
    # bump: one digest of newer code, by hand
    with open(os.path.join(job.work, "functions/cat/hello.txt"), "a") as f:
        f.write("newer\n")
    git(job.work, "commit", "--quiet", "-am", "newer cat")
    image = built[0]["image"].split("@")[0] + "@sha256:" + "a" * 64
    r = job.run("actions/bump/action.yml", function="cat", env="dev", image=image,
                extra_env={"GITHUB_SHA": head(job.work)})
    assert r.ok, r.step("bump").stderr
    assert _pin(job.bare, "cat", "dev")["image"] == image and _pin(job.bare, "cat", "dev")["previous"]
    # promote: dev's pins to staging, no rebuild
    r = job.run("actions/promote/action.yml", all="true", **{"from": "dev"}, to="staging")
    assert r.ok, r.step("promote").stderr
    assert _pin(job.bare, "cat", "staging")["image"] == image
    # rollback: dev back to what pin wrote
    r = job.run("actions/rollback/action.yml", function="cat", env="dev", reason="p95 over SLO")
    assert r.ok, r.step("rollback").stderr
    assert _pin(job.bare, "cat", "dev")["image"] == built[0]["image"]
    assert "p95 over SLO" in git(job.bare, "log", "-1", "--format=%B", "main")
    assert not [a for a in r.annotations if a.kind == "error"]


def test_more_problems_than_github_shows_say_so(monkeypatch, capsys):
    """C5: GitHub shows 10 error annotations per step; the tenth says how many more are in the log."""
    from fnops.cli.gha import annotate
    from fnops.errors import Problem, SpecError

    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    annotate(SpecError([Problem("functions/f/function.yaml", n, 1, f"problem {n}") for n in range(1, 13)]))
    c = _feed(*capsys.readouterr().out.splitlines())
    assert len(c.annotations) == 10 and c.annotations[8].message == "problem 9"
    assert c.annotations[9].message.startswith("3 more problems") and "log" in c.annotations[9].message
    annotate(SpecError([Problem("f.yaml", n, 1, f"p{n}") for n in range(1, 11)]))
    assert [a.message for a in _feed(*capsys.readouterr().out.splitlines()).annotations] == [
        f"p{n}" for n in range(1, 11)]
