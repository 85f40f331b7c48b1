"""bump / promote / rollback against real bare Git remotes."""

import os
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from conftest import fnops
from gitrepo import clone, git, head, make_origin, new_commit, show

REPO = "ghcr.io/acme/functions/hello"
D = lambda c: "sha256:" + c * 64  # noqa: E731
PIN = "functions/hello/releases/dev.yaml"
ENV = {"SOURCE_DATE_EPOCH": "1795341600"}  # 2026-11-22T10:00:00Z


@pytest.fixture
def origin(tmp_path):
    return make_origin(tmp_path)


@pytest.fixture
def work(origin, tmp_path):
    return clone(origin, tmp_path / "work")


def bump(cwd, image, fn="hello", env="dev", *extra, **envvars):
    """Bump with the clone's HEAD as the source commit (the usual CI case)."""
    return fnops("bump", fn, "--env", env, "--image", image, "--source-repo", "acme/functions",
                 "--source-commit", head(cwd), *extra, cwd=cwd, env={**ENV, **envvars})


def test_bump_pins_keeps_comments_and_records_provenance(origin, work):
    before = show(origin, PIN)
    old_image = yaml.safe_load(before)["image"]
    render_before = fnops("render", "functions/hello", "--env", "dev", cwd=work).stdout
    old_rev = yaml.safe_load(render_before.split("---")[1])["spec"]["template"]["metadata"]["name"]
    r = bump(work, f"{REPO}:sha-1a2b3c4@{D('b')}")
    assert r.returncode == 0, r.stderr
    pin_text = show(origin, PIN)
    assert pin_text.startswith("# Written by fnops bump; do not edit by hand.")  # comment kept
    pin = yaml.safe_load(pin_text)
    assert pin["image"] == f"{REPO}:sha-1a2b3c4@{D('b')}"
    assert pin["source"]["commit"] == head(work) and pin["source"]["repo"] == "acme/functions"
    assert pin["releasedAt"] == "2026-11-22T10:00:00Z"
    assert pin["previous"]["image"] == old_image
    assert pin["previous"]["revision"] == old_rev  # the revision the cluster is running
    msg = git(origin, "log", "-1", "--format=%B", "main")
    assert msg.startswith("fnops: release hello to dev (sha-1a2b3c4)")
    trailers = git(origin, "log", "-1", "--format=%(trailers:only,unfold)", "main")
    assert f"Fnops-Image: {REPO}:sha-1a2b3c4@{D('b')}" in trailers
    assert f"Fnops-Source-Commit: {head(work)}" in trailers and "Fnops-Function: hello" in trailers
    assert git(origin, "rev-list", "--count", "main") == "3"  # the two seed commits + this one
    # The new pin renders, and its canary/rollback partner is the old revision.
    r2 = fnops("render", "functions/hello", "--env", "dev", cwd=clone(origin, os.path.join(work, "..", "check")))
    assert r2.returncode == 0 and D("b") in r2.stdout


def test_same_pin_again_commits_nothing(origin, work):
    assert bump(work, f"{REPO}:sha-1a2b3c4@{D('b')}").returncode == 0
    head = git(origin, "rev-parse", "main")
    r = bump(work, f"{REPO}:sha-1a2b3c4@{D('b')}")
    assert r.returncode == 0 and "nothing to commit" in r.stdout
    assert git(origin, "rev-parse", "main") == head


def test_bump_from_a_detached_stale_checkout_leaves_local_work_alone(origin, work, tmp_path):
    """GitHub Actions checks out a detached SHA that may be behind the branch."""
    other = clone(origin, tmp_path / "other")
    assert bump(other, f"ghcr.io/acme/functions/nightly-report:sha-0000001@{D('c')}", "nightly-report").returncode == 0
    git(work, "checkout", "--quiet", "--detach", "HEAD")
    handler = Path(work, "functions/hello/handler.py")
    handler.write_text(handler.read_text() + "# local edit\n")
    r = bump(work, f"{REPO}:sha-1a2b3c4@{D('b')}")
    assert r.returncode == 0, r.stderr
    assert "# local edit" in handler.read_text()
    assert git(work, "status", "--porcelain") == "M functions/hello/handler.py"
    log = git(origin, "log", "--format=%s", "main").splitlines()
    assert log[:2] == ["fnops: release hello to dev (sha-1a2b3c4)", "fnops: release nightly-report to dev (sha-0000001)"]


def test_rollback_restores_previous_and_refuses_a_second_time(origin, work):
    first = yaml.safe_load(show(origin, PIN))
    assert bump(work, f"{REPO}:sha-1a2b3c4@{D('b')}").returncode == 0
    r = fnops("rollback", "hello", "--env", "dev", "--reason", "p95 over SLO", cwd=work, env=ENV)
    assert r.returncode == 0, r.stderr
    pin = yaml.safe_load(show(origin, PIN))
    assert pin["image"] == first["image"]
    assert pin["rollbackOf"] == f"{REPO}:sha-1a2b3c4@{D('b')}"
    assert pin["source"]["commit"] == first["source"]["commit"]  # back to the old code's commit
    assert "previous" not in pin
    msg = git(origin, "log", "-1", "--format=%B", "main")
    assert msg.startswith("fnops: roll back hello in dev to ") and "p95 over SLO" in msg
    assert f"Fnops-Rollback-Of: {REPO}:sha-1a2b3c4@{D('b')}" in msg
    head = git(origin, "rev-parse", "main")
    again = fnops("rollback", "hello", "--env", "dev", cwd=work, env=ENV)
    assert again.returncode == 1 and "not rolling back a rollback" in again.stderr
    assert len(again.stderr.strip().splitlines()) == 1
    assert git(origin, "rev-parse", "main") == head
    # A rollback re-selects the revision the cluster already ran.
    render = lambda: fnops("render", "functions/hello", "--env", "dev", cwd=work).stdout  # noqa: E731
    git(work, "pull", "--quiet", "--ff-only")
    assert first["image"] in render()


def test_rollback_without_previous_is_refused(origin, work):
    r = fnops("rollback", "hello", "--env", "dev", cwd=work, env=ENV)
    assert r.returncode == 1 and "no previous release recorded" in r.stderr


def test_promote_copies_the_pin_and_its_source(origin, work):
    assert bump(work, f"{REPO}:sha-1a2b3c4@{D('b')}").returncode == 0
    r = fnops("promote", "hello", "--from", "dev", "--to", "prod", cwd=work, env=ENV)
    assert r.returncode == 0, r.stderr
    prod = yaml.safe_load(show(origin, "functions/hello/releases/prod.yaml"))
    assert prod["image"] == f"{REPO}:sha-1a2b3c4@{D('b')}" and prod["source"]["commit"] == head(work)
    assert git(origin, "log", "-1", "--format=%s", "main") == "fnops: promote hello to prod (sha-1a2b3c4)"


@pytest.mark.parametrize("args,fragment", [
    (("--image", f"{REPO}:latest"), "is not pinned by digest"),
    (("--image", f"ghcr.io/other/hello@{D('b')}"), "not this function's repository"),
    (("--image", f"{REPO}@{D('b')}", "--source-commit", "abc"), "not a full Git commit SHA"),
])
def test_invalid_input_exits_2_and_pushes_nothing(origin, work, args, fragment):
    head = git(origin, "rev-parse", "main")
    r = fnops("bump", "hello", "--env", "dev", *args, cwd=work, env=ENV)
    assert r.returncode == 2 and fragment in r.stderr, r.stderr
    assert git(origin, "rev-parse", "main") == head


def test_spec_error_on_the_branch_stops_before_any_commit(origin, work, tmp_path):
    other = clone(origin, tmp_path / "other")
    with open(os.path.join(other, "functions/hello/function.yaml"), "a") as f:
        f.write("scael: {}\n")
    git(other, "commit", "--quiet", "-am", "typo")
    git(other, "push", "--quiet", "origin", "main")
    head = git(origin, "rev-parse", "main")
    r = bump(work, f"{REPO}:sha-1a2b3c4@{D('b')}")
    assert r.returncode == 2 and "function.yaml:" in r.stderr and "did you mean 'scale'" in r.stderr
    assert git(origin, "rev-parse", "main") == head


def test_push_rejected_by_the_server_is_one_clear_line(origin, work):
    hook = os.path.join(origin, "hooks", "pre-receive")
    with open(hook, "w") as f:
        f.write("#!/bin/sh\necho 'protected branch: pushes need review' >&2\nexit 1\n")
    os.chmod(hook, 0o755)
    head = git(origin, "rev-parse", "main")
    r = bump(work, f"{REPO}:sha-1a2b3c4@{D('b')}")
    assert r.returncode == 1
    assert len(r.stderr.strip().splitlines()) == 1 and "push to main failed" in r.stderr
    assert git(origin, "rev-parse", "main") == head
    assert git(work, "worktree", "list").count("\n") == 0  # scratch tree cleaned up


def test_gitops_repo_mode_clones_elsewhere(origin, tmp_path):
    app = tmp_path / "app"
    git(tmp_path, "init", "--quiet", str(app))
    r = fnops("bump", "hello", "--env", "dev", "--image", f"{REPO}:sha-1a2b3c4@{D('b')}",
              "--gitops-repo", f"file://{origin}", "--branch", "main", "--allow-older", cwd=str(app), env=ENV)
    assert r.returncode == 0, r.stderr
    assert yaml.safe_load(show(origin, PIN))["image"].endswith(D("b"))


def test_missing_remote_is_one_line_and_exit_1(tmp_path):
    app = tmp_path / "app"
    git(tmp_path, "init", "--quiet", str(app))
    r = fnops("bump", "hello", "--env", "dev", "--image", f"{REPO}@{D('b')}",
              "--gitops-repo", f"file://{tmp_path}/nope.git", "--branch", "main", cwd=str(app), env=ENV)
    assert r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1 and "cannot clone" in r.stderr


def _parallel(cmds):
    procs = [subprocess.Popen(c["args"], cwd=c["cwd"], env=c["env"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for c in cmds]
    results = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        results.append((p.returncode, out, err))
    return results


def _cmd(cwd, fn, image):
    import shutil

    env = {k: v for k, v in os.environ.items() if not k.startswith(("ARGOCD_", "FNOPS_", "GITHUB_"))}
    env.update(ENV)
    exe = shutil.which("fnops")
    return {"cwd": cwd, "env": env,
            "args": [exe, "bump", fn, "--env", "dev", "--image", image, "--source-commit", head(cwd)]}


def test_eight_concurrent_bumps_of_different_functions_all_land(origin, tmp_path):
    fns = ["hello", "checkout", "nightly-report", "order-events", "orders-consumer", "thumbnail-worker"]
    fns += ["hello", "checkout"]  # same functions in prod: 8 pins, 8 clones
    envs = ["dev"] * 6 + ["prod"] * 2
    cmds = []
    for i, (fn, env) in enumerate(zip(fns, envs)):
        c = _cmd(clone(origin, tmp_path / f"c{i}"), fn, f"ghcr.io/acme/functions/{fn}:sha-000000{i}@{D(str(i))}")
        c["args"][4] = env
        cmds.append(c)
    results = _parallel(cmds)
    assert all(rc == 0 for rc, _, _ in results), results
    for i, (fn, env) in enumerate(zip(fns, envs)):
        pin = yaml.safe_load(show(origin, f"functions/{fn}/releases/{env}.yaml"))
        assert pin["image"].endswith(D(str(i)))
    assert git(origin, "rev-list", "--count", "main") == "10"
    assert git(origin, "rev-list", "--merges", "--count", "main") == "0"


def test_six_racing_bumps_of_one_pin_end_with_the_newest_source(origin, tmp_path):
    """Six CI runs for six successive commits, finishing in any order: whatever lands, the
    pin only moves forward, and the newest source is pinned at the end."""
    seed = clone(origin, tmp_path / "author")
    chain = [new_commit(seed, line=f"# change {i}\n") for i in range(6)]
    git(seed, "push", "--quiet", "origin", "HEAD:main")
    images = {c: f"{REPO}:sha-{c[:7]}@{D('abcdef'[i])}" for i, c in enumerate(chain)}
    cmds = []
    for i, c in enumerate(reversed(chain)):  # the oldest start last, as a late re-run would
        cmd = _cmd(clone(origin, tmp_path / f"r{i}"), "hello", images[c])
        cmd["args"][cmd["args"].index("--source-commit") + 1] = c
        cmds.append(cmd)
    results = _parallel(cmds)
    for rc, _, err in results:
        assert rc == 0 or (rc == 1 and "not replacing a pin with older code" in err
                           and len(err.strip().splitlines()) == 1), err
    assert git(origin, "rev-list", "--merges", "--count", "main") == "0"
    final = yaml.safe_load(show(origin, PIN))
    assert final["image"] == images[chain[-1]] and final["source"]["commit"] == chain[-1]
    # Every pin that landed is newer than the one it replaced.
    landed = [yaml.safe_load(show(origin, PIN, c))["source"]["commit"]
              for c in git(origin, "rev-list", "--reverse", "main", "--", PIN).splitlines()[2:]]
    assert landed == sorted(landed, key=chain.index) and len(set(landed)) == len(landed)


def test_a_bump_of_older_source_is_refused_and_changes_nothing(origin, work):
    old = head(work)
    newer = new_commit(work, push=True)
    assert bump(work, f"{REPO}:sha-{newer[:7]}@{D('c')}").returncode == 0
    tip = git(origin, "rev-parse", "main")
    r = fnops("bump", "hello", "--env", "dev", "--image", f"{REPO}:sha-{old[:7]}@{D('b')}", "--source-commit", old,
              cwd=work, env=ENV)
    assert r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert f"pins source {newer[:7]}, which is newer than {old[:7]}" in r.stderr and "--allow-older" in r.stderr
    assert git(origin, "rev-parse", "main") == tip
    # An unrelated commit (another history) is refused the same way; --allow-older forces it.
    other = fnops("bump", "hello", "--env", "dev", "--image", f"{REPO}@{D('e')}", "--source-commit", "f" * 40,
                  cwd=work, env=ENV)
    assert other.returncode == 1 and "cannot be shown to be newer" in other.stderr
    forced = fnops("bump", "hello", "--env", "dev", "--image", f"{REPO}:sha-{old[:7]}@{D('b')}", "--source-commit",
                   old, "--allow-older", cwd=work, env=ENV)
    assert forced.returncode == 0, forced.stderr
    assert yaml.safe_load(show(origin, PIN))["source"]["commit"] == old


def test_a_rebuild_of_the_same_source_keeps_previous_pointing_at_other_code(origin, work):
    first = yaml.safe_load(show(origin, PIN))
    newer = new_commit(work, push=True)
    assert bump(work, f"{REPO}:sha-{newer[:7]}@{D('b')}").returncode == 0
    assert bump(work, f"{REPO}:sha-{newer[:7]}@{D('c')}").returncode == 0  # same code, new base image
    pin = yaml.safe_load(show(origin, PIN))
    assert pin["image"].endswith(D("c")) and pin["previous"]["image"] == first["image"]
    r = fnops("rollback", "hello", "--env", "dev", cwd=work, env=ENV)
    assert r.returncode == 0, r.stderr
    assert yaml.safe_load(show(origin, PIN))["image"] == first["image"]


def test_bump_and_promote_refuse_an_environment_nobody_declared(origin, work):
    tip = git(origin, "rev-parse", "main")
    r = fnops("promote", "hello", "--from", "dev", "--to", "qa", cwd=work, env=ENV)
    assert r.returncode == 1 and "environment 'qa' is not declared" in r.stderr, r.stderr
    assert "declared: dev, prod" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    r = bump(work, f"{REPO}@{D('b')}", "hello", "qa")
    assert r.returncode == 1 and "--new-environment" in r.stderr
    assert git(origin, "rev-parse", "main") == tip
    r = fnops("promote", "hello", "--from", "dev", "--to", "qa", "--new-environment", cwd=work, env=ENV)
    assert r.returncode == 0, r.stderr
    assert yaml.safe_load(show(origin, "functions/hello/releases/qa.yaml"))["image"] == \
        yaml.safe_load(show(origin, PIN))["image"]


def test_bump_promote_rollback_speak_json(origin, work):
    import json

    newer = new_commit(work, push=True)
    r = bump(work, f"{REPO}:sha-{newer[:7]}@{D('b')}", "hello", "dev", "--output", "json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["commit"] == git(origin, "rev-parse", "main") and out["pullRequest"] is None
    (row,) = out["functions"]
    assert row["function"] == "hello" and row["environment"] == "dev" and row["action"] == "release"
    assert row["digest"] == D("b") and row["sourceCommit"] == newer and row["previousImage"].startswith(REPO)
    r = fnops("promote", "hello", "--from", "dev", "--to", "prod", "--output", "json", cwd=work, env=ENV)
    assert json.loads(r.stdout)["functions"][0]["action"] == "promote"
    r = fnops("rollback", "hello", "--env", "dev", "--output", "json", cwd=work, env=ENV)
    row = json.loads(r.stdout)["functions"][0]
    assert row["action"] == "rollback" and row["rollbackOf"] == f"{REPO}:sha-{newer[:7]}@{D('b')}"
    again = bump(work, f"{REPO}:sha-{newer[:7]}@{D('b')}", "hello", "prod", "--output", "json")
    assert json.loads(again.stdout) == {"functions": [], "commit": None, "pullRequest": None, "dryRun": False,
                                        "skipped": [{"function": "hello", "environment": "prod", "why": "unchanged"}]}


def test_gitops_repo_over_http_with_a_token_that_is_never_stored_or_shown(origin, tmp_path):
    from git_http import GitHttpServer

    token = "ghs_" + "Z" * 36
    app = tmp_path / "app"
    git(tmp_path, "init", "--quiet", str(app))
    with GitHttpServer(os.path.dirname(origin), token) as srv:
        url = f"{srv.url}/{os.path.basename(origin)}"
        r = fnops("bump", "hello", "--env", "dev", "--image", f"{REPO}:sha-1a2b3c4@{D('b')}",
                  "--gitops-repo", url, "--branch", "main", "--allow-older", cwd=str(app),
                  env={**ENV, "GITOPS_TOKEN": token})
        assert r.returncode == 0, r.stderr
        assert token not in r.stdout + r.stderr
        assert yaml.safe_load(show(origin, PIN))["image"].endswith(D("b"))
        assert any(a.startswith("Basic ") for a in srv.seen_auth)
        assert token not in git(origin, "log", "--format=%B", "main")
        # The wrong token: one line, exit 1, nothing pushed, the token not echoed.
        head = git(origin, "rev-parse", "main")
        bad = "ghs_" + "Y" * 36
        r = fnops("bump", "hello", "--env", "dev", "--image", f"{REPO}:sha-2b3c4d5@{D('c')}",
                  "--gitops-repo", url, "--branch", "main", "--allow-older", cwd=str(app),
                  env={**ENV, "GITOPS_TOKEN": bad})
        assert r.returncode == 1 and "authentication failed" in r.stderr
        assert len(r.stderr.strip().splitlines()) == 1 and bad not in r.stderr
        assert git(origin, "rev-parse", "main") == head
    assert not any(os.path.exists(os.path.join(str(app), p)) for p in ("tree", ".fnops"))


def test_promote_all_copies_every_tested_digest_in_one_commit(origin, work):
    assert bump(work, f"{REPO}:sha-1a2b3c4@{D('b')}").returncode == 0
    before = {n: yaml.safe_load(show(origin, f"functions/{n}/releases/prod.yaml"))["image"]
              for n in ("checkout", "nightly-report")}
    count = git(origin, "rev-list", "--count", "main")
    r = fnops("promote", "--all", "--from", "dev", "--to", "prod", "--mode", "push", "--approved", "--output", "json",
              cwd=work, env=ENV)
    assert r.returncode == 0, r.stderr
    assert git(origin, "rev-list", "--count", "main") == str(int(count) + 1)  # one commit for all of them
    for name in ("hello", "checkout", "nightly-report"):
        dev = yaml.safe_load(show(origin, f"functions/{name}/releases/dev.yaml"))
        prod = yaml.safe_load(show(origin, f"functions/{name}/releases/prod.yaml"))
        assert prod["image"] == dev["image"], name  # the digest dev tested, not a rebuild
    assert any(before[n] != yaml.safe_load(show(origin, f"functions/{n}/releases/prod.yaml"))["image"] for n in before)
    again = fnops("promote", "--all", "--from", "dev", "--to", "prod", "--mode", "push", "--approved", cwd=work, env=ENV)
    assert again.returncode == 0 and git(origin, "rev-list", "--count", "main") == str(int(count) + 1)


@pytest.mark.parametrize("args", [("hello", "--all"), ()])
def test_promote_needs_one_function_or_all(origin, work, args):
    r = fnops("promote", *args, "--from", "dev", "--to", "prod", cwd=work, env=ENV)
    assert r.returncode == 2 and "name a FUNCTION or pass --all" in r.stderr


def _pin_unknown_source(work, when: str | None):
    """The pin records a source commit this clone has never seen (another repository's
    history), with or without its commit time."""
    path = Path(work) / PIN
    pin = yaml.safe_load(path.read_text())
    pin["source"] = {"repo": "acme/app", "commit": "ab" * 20, **({"time": when} if when else {})}
    path.write_text(yaml.safe_dump(pin))
    git(work, "commit", "--quiet", "-am", "pin from the app repository's CI")
    git(work, "push", "--quiet", "origin", "main")


@pytest.mark.parametrize("recorded,code,fragment", [
    ("2000-01-01T00:00:00Z", 0, None),   # the pinned source is older: the new one replaces it
    ("2100-01-01T00:00:00Z", 1, "which is newer than"),
    (None, 1, "records no source time"),
])
def test_without_the_source_history_pins_are_ordered_by_their_recorded_time(origin, work, recorded, code, fragment):
    _pin_unknown_source(work, recorded)
    tip = git(origin, "rev-parse", "main")
    r = bump(work, f"{REPO}:sha-1a2b3c4@{D('c')}")
    assert r.returncode == code, r.stderr
    if fragment:
        assert fragment in r.stderr and len(r.stderr.strip().splitlines()) == 1
        assert git(origin, "rev-parse", "main") == tip
    else:
        pin = yaml.safe_load(show(origin, PIN))
        when = int(git(work, "show", "-s", "--format=%ct", "HEAD"))
        assert pin["source"]["time"] == time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(when))
        assert pin["previous"]["source"] == {"repo": "acme/app", "commit": "ab" * 20, "time": recorded}
