"""What a GitHub remote says back, as fnops reports it: a protected branch's rejection names
GitHub's rule (GH006 / GH013 lines, as GitHub prints them on `remote:` lines, from a
pre-receive hook on a bare repository); pins are committed by the right bot; and a shallow
CI clone of a private repository is deepened with the token (a token-demanding
`git http-backend` on loopback)."""

from __future__ import annotations

import base64
import json
import os
import stat
import subprocess

import pytest

from conftest import fnops
from git_http import GitHttpServer
from gitrepo import clone, git, head, make_origin

REPO = "ghcr.io/acme/functions/hello"
D = lambda c: "sha256:" + c * 64  # noqa: E731

# What github.com answers a push to a protected branch (classic protection) and to a branch
# under rulesets, word for word as it reaches git's stderr after the `remote: ` prefix.
GH006 = ["error: GH006: Protected branch update failed for refs/heads/main.",
         "error: Changes must be made through a pull request."]
GH013 = ["error: GH013: Repository rule violations found for refs/heads/main.",
         "Review all repository rules at https://github.com/acme/functions/rules?ref=refs%2Fheads%2Fmain",
         "",
         "- Changes must be made through a pull request.",
         "",
         "- Required status check \"ci\" is expected.",
         ""]


def protect(bare: str, lines: list[str]) -> str:
    """A pre-receive hook that refuses every push with GitHub's text; -> the file counting calls."""
    calls = os.path.join(bare, "hook-calls")
    hook = os.path.join(bare, "hooks", "pre-receive")
    body = "".join(f"printf '%s\\n' {json.dumps(line)} >&2\n" for line in lines)
    with open(hook, "w") as f:
        f.write(f"#!/bin/sh\necho x >> {calls}\n{body}exit 1\n")
    os.chmod(hook, os.stat(hook).st_mode | stat.S_IXUSR)
    return calls


@pytest.fixture
def work(tmp_path):
    origin = make_origin(tmp_path)
    return origin, clone(origin, tmp_path / "work")


def bump(wd, **env):
    return fnops("bump", "hello", "--env", "dev", "--image", f"{REPO}:sha-1a2b3c4@{D('b')}", "--source-repo",
                 "acme/functions", "--source-commit", head(wd), cwd=wd,
                 env={"SOURCE_DATE_EPOCH": "1795341600", **env})


@pytest.mark.parametrize("text, rule", [
    (GH006, "GH006: Protected branch update failed for refs/heads/main; Changes must be made through a pull request"),
    (GH013, "GH013: Repository rule violations found for refs/heads/main; Changes must be made through a pull "
            "request; Required status check \"ci\" is expected"),
], ids=["GH006", "GH013"])
def test_a_protected_branch_rejection_names_githubs_rule_and_the_options(work, text, rule):
    origin, wd = work
    calls = protect(origin, text)
    tip = git(origin, "rev-parse", "main")
    r = bump(wd)
    assert r.returncode == 1, r.stderr
    line, = r.stderr.strip().splitlines()
    assert f"GitHub refused it: {rule} (" in line
    assert "failed to push some refs" not in line  # not git's generic last line
    assert "mode: pr" in line and "gitops-repo" in line and "bypass" in line
    assert git(origin, "rev-parse", "main") == tip
    with open(calls) as f:
        assert len(f.readlines()) == 1  # a rule is not a lost race: no redo


def _author(origin):
    return git(origin, "log", "-1", "--format=%an <%ae>|%cn <%ce>", "main")


@pytest.mark.parametrize("actions, who", [
    ("true", "github-actions[bot] <41898282+github-actions[bot]@users.noreply.github.com>"),
    ("", "fnops <fnops@fnops.invalid>"),
], ids=["github-actions", "elsewhere"])
def test_pins_are_committed_by_the_bot_not_a_github_user_named_fnops(work, tmp_path, actions, who):
    origin, wd = work
    empty = tmp_path / "gitconfig"
    empty.write_text("")
    r = bump(wd, GITHUB_ACTIONS=actions, GIT_CONFIG_GLOBAL=str(empty), GIT_CONFIG_NOSYSTEM="1")
    assert r.returncode == 0, r.stderr
    assert _author(origin) == f"{who}|{who}"


def test_a_configured_identity_wins(work, tmp_path):
    origin, wd = work
    cfg = tmp_path / "gitconfig"
    cfg.write_text("[user]\n\tname = Ada\n\temail = ada@example.com\n")
    r = bump(wd, GITHUB_ACTIONS="true", GIT_CONFIG_GLOBAL=str(cfg), GIT_CONFIG_NOSYSTEM="1")
    assert r.returncode == 0, r.stderr
    assert _author(origin) == "Ada <ada@example.com>|Ada <ada@example.com>"


def test_a_shallow_clone_of_a_private_repository_is_deepened_with_the_token(tmp_path):
    """actions/checkout with fetch-depth 1 and persist-credentials: false: origin has no
    credentials. The unshallow fetch goes with the token (through git's environment), so the
    pins' source commits are known and nothing is planned as stale."""
    make_origin(tmp_path)  # origin.git under tmp_path, which the http-backend serves
    seed = tmp_path / "seed"
    (seed / "NOTES.md").write_text("not a function\n")
    git(seed, "add", "NOTES.md")
    git(seed, "commit", "--quiet", "-m", "notes")
    git(seed, "push", "--quiet", "origin", "main")
    token = "ghs_private_repo_token_0123456789"
    with GitHttpServer(str(tmp_path), token) as srv:
        url = f"{srv.url}/origin.git"
        basic = base64.b64encode(f"x-access-token:{token}".encode()).decode()
        auth = {"GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": f"http.{url}.extraHeader",
                "GIT_CONFIG_VALUE_0": f"Authorization: Basic {basic}"}
        wd = tmp_path / "ci"
        subprocess.run(["git", "clone", "--quiet", "--depth", "1", url, str(wd)], check=True,
                       env={**os.environ, **auth}, capture_output=True)
        assert git(wd, "rev-parse", "--is-shallow-repository") == "true"
        env = {"GITHUB_SHA": head(wd), "GITHUB_REF": "refs/heads/main", "GITOPS_TOKEN": token}
        r = fnops("ship", "--env", "dev", "--registry", "127.0.0.1:9/fns", "--plan", "--output", "json", cwd=wd,
                  env=env)
        assert r.returncode == 0, r.stderr
        out = json.loads(r.stdout)
        assert out["plan"] == [] and {s["why"] for s in out["skipped"]} == {"up-to-date"}, out
        assert git(wd, "rev-parse", "--is-shallow-repository") == "false"
        assert token not in r.stderr + r.stdout
        # Without the token the same clone is refused in one line, before anything is built.
        wd2 = tmp_path / "ci2"
        subprocess.run(["git", "clone", "--quiet", "--depth", "1", url, str(wd2)], check=True,
                       env={**os.environ, **auth}, capture_output=True)
        r = fnops("ship", "--env", "dev", "--registry", "127.0.0.1:9/fns", "--plan", cwd=wd2,
                  env={**env, "GITOPS_TOKEN": "ghs_wrong"})
        assert r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1, r.stderr
        assert "authentication failed" in r.stderr and "ghs_wrong" not in r.stderr


def test_deepening_for_a_separate_gitops_repo_never_sends_its_token_to_the_source_origin(tmp_path):
    """GITOPS_TOKEN belongs to --gitops-repo. The source clone's origin (here on the GitHub
    host, as GITHUB_SERVER_URL says) gets GITHUB_TOKEN for the unshallow fetch, never it."""
    make_origin(tmp_path)  # origin.git under tmp_path, which the http-backend serves
    (tmp_path / "gitops-host").mkdir()
    gitops = make_origin(tmp_path / "gitops-host")
    github_token, gitops_token = "ghs_source_repo_token_0123456789", "glpat-gitops-host-token-0123"
    with GitHttpServer(str(tmp_path), github_token) as srv:
        url = f"{srv.url}/origin.git"
        basic = base64.b64encode(f"x-access-token:{github_token}".encode()).decode()
        auth = {"GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": f"http.{url}.extraHeader",
                "GIT_CONFIG_VALUE_0": f"Authorization: Basic {basic}"}
        wd = tmp_path / "ci"
        subprocess.run(["git", "clone", "--quiet", "--depth", "1", url, str(wd)], check=True,
                       env={**os.environ, **auth}, capture_output=True)
        srv.seen_auth.clear()
        r = fnops("ship", "--env", "dev", "--registry", "127.0.0.1:9/fns", "--plan", "--gitops-repo",
                  f"file://{gitops}", cwd=wd,
                  env={"GITHUB_SHA": head(wd), "GITOPS_TOKEN": gitops_token, "GITHUB_TOKEN": github_token,
                       "GITHUB_SERVER_URL": srv.url})
        assert r.returncode == 0, r.stderr
        assert git(wd, "rev-parse", "--is-shallow-repository") == "false"
    seen = " ".join(base64.b64decode(a.split()[-1]).decode() for a in srv.seen_auth if a.startswith("Basic "))
    assert github_token in seen and gitops_token not in seen
