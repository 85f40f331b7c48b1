"""Untrusted input to the delivery commands, round 2 (issue 17), tried as an attacker would:
result files of other matrix jobs handed to `fnops pin`, and a GitOps repository on a host
that is not GitHub's. Real git (a bare origin, an HTTP server on loopback that records
every Authorization header), real processes, and the runner's own reading of the log
(tests/gha_runner.py), so a workflow command that gets through is seen as the runner sees it."""

from __future__ import annotations

import base64
import json
import os
import resource
import shutil
import subprocess

import pytest

import gha_runner
from conftest import ROOT, fnops
from gitrepo import git, head

DIGEST = "sha256:" + "a" * 64
REGISTRY = "ghcr.io/acme/fns"
GITHUB_JOB_TOKEN = "ghs_" + "J" * 36


@pytest.fixture
def repo(tmp_path):
    """A functions repository as a team has it: `hello` as `fnops new` makes it (no `image:`),
    `cat` with its own repository, and a platform folder outside functions/ that is not a
    function of this team's."""
    bare, work = tmp_path / "origin.git", tmp_path / "work"
    git(tmp_path, "init", "--quiet", "--bare", "--initial-branch=main", str(bare))
    git(tmp_path, "init", "--quiet", "--initial-branch=main", str(work))
    r = fnops("new", "hello", "--dir", "functions", cwd=work)
    assert r.returncode == 0, r.stderr
    cat = work / "functions" / "cat"
    (cat / "releases").mkdir(parents=True)
    (cat / "function.yaml").write_text("runtime: dockerfile\nimage: registry.example.com/acme/cat\n"
                                       "environments: {dev: {}}\n")
    (cat / "Dockerfile").write_text("FROM scratch\n")
    ingress = work / "platform" / "ingress"
    ingress.mkdir(parents=True)
    (ingress / "function.yaml").write_text("runtime: python3.12\n")
    git(work, "add", "-A")
    git(work, "commit", "--quiet", "-m", "functions")
    git(work, "remote", "add", "origin", str(bare))
    git(work, "push", "--quiet", "origin", "main")
    return str(work), str(bare)


def row(work, function, image=None, **over):
    """One row of `fnops ship --no-pin --output json`, as the build job wrote it."""
    image = image or (f"registry.example.com/acme/cat:sha-1234567@{DIGEST}" if function == "cat"
                      else f"{REGISTRY}/{function}:sha-1234567@{DIGEST}")
    r = {"function": function, "environment": "dev", "image": image, "digest": DIGEST, "pushed": True,
         "reason": "unpinned", "sourceCommit": head(work)}
    r.update(over)
    return r


def write(path, rows_or_doc) -> str:
    doc = rows_or_doc if isinstance(rows_or_doc, (dict, str)) else {"functions": rows_or_doc}
    os.makedirs(os.path.dirname(str(path)), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(doc if isinstance(doc, str) else json.dumps(doc))
    return str(path)


def pin(work, *args, env=None):
    """`fnops pin` as the pin job runs it: in GitHub Actions, GITHUB_SHA the checked-out commit."""
    return fnops("pin", "--env", "dev", *args, cwd=work,
                 env={"GITHUB_SHA": head(work), "GITHUB_ACTIONS": "true", **(env or {})})


def no_workflow_commands(*texts) -> None:
    """What the runner would make of the output: not one command."""
    cmds = gha_runner.Commands([])
    for text in texts:
        for line in gha_runner.split_lines(text.encode()):
            cmds.feed(line)
    assert cmds.processed == [] and cmds.masks == [] and cmds.stopped_token is None, cmds.processed


def refused(r, bare, tip, fragment) -> None:
    """Exit 2, one line saying what, no traceback, no workflow command, nothing pushed."""
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1 and fragment in lines[0], r.stderr
    assert "Traceback" not in r.stderr and len(lines[0]) < 600
    no_workflow_commands(r.stdout, r.stderr)
    assert git(bare, "rev-parse", "main") == tip


# --- names from a result are function folders before they touch a path -----------------

HOSTILE_NAMES = {
    "parent-folder": "../platform/ingress",
    "absolute": "{outside}",
    "newline-workflow-commands": "hello\n::error::forged\n::add-mask::hello",
    "legacy-command": "##[add-mask]hello",
    "stop-commands": "x\n::stop-commands::evil1234",
    "upper-case": "Hello",
    "no-such-folder": "platform",
}


@pytest.mark.parametrize("name", HOSTILE_NAMES.values(), ids=HOSTILE_NAMES.keys())
def test_a_result_names_only_function_folders(repo, tmp_path, name):
    """The finding: `../platform/ingress` committed a pin outside functions/, an absolute
    name wrote outside the repository before git refused, and a newline printed
    `::error` / `::add-mask::` as workflow commands."""
    work, bare = repo
    tip = git(bare, "rev-parse", "main")
    outside = outside_function(tmp_path)
    result = write(tmp_path / "r.json", [row(work, name.format(outside=outside), image=f"{REGISTRY}/hello:sha-1@{DIGEST}")])
    r = pin(work, "--registry", REGISTRY, result)
    refused(r, bare, tip, "no function 'platform'" if name == "platform" else "is not a function name")
    assert not os.path.exists(os.path.join(outside, "releases"))
    assert not os.path.exists(os.path.join(work, "platform", "ingress", "releases"))
    assert "releases" not in git(bare, "ls-tree", "-r", "--name-only", "main", "--", "platform")


def outside_function(tmp_path) -> str:
    """A folder outside the repository that looks like a function (the runner's own files)."""
    outside = tmp_path / "outside" / "x"
    outside.mkdir(parents=True, exist_ok=True)
    (outside / "function.yaml").write_text("runtime: python3.12\n")
    return str(outside)


def test_a_function_folder_that_is_a_link_is_not_followed(repo, tmp_path):
    """A link committed as a function folder: neither `pin` nor `bump` writes through it (the
    pin used to land where it pointed, outside the repository, before git refused it)."""
    work, bare = repo
    outside = outside_function(tmp_path)
    os.symlink(outside, os.path.join(work, "functions", "evil"))
    git(work, "add", "-A")
    git(work, "commit", "--quiet", "-m", "a link out of the repository")
    git(work, "push", "--quiet", "origin", "main")
    tip = git(bare, "rev-parse", "main")
    r = pin(work, "--registry", REGISTRY, write(tmp_path / "r.json", [row(work, "evil")]))
    refused(r, bare, tip, "no function 'evil' under functions/")
    r = fnops("bump", "evil", "--env", "dev", "--image", f"{REGISTRY}/evil@{DIGEST}", "--new-environment", cwd=work)
    assert r.returncode == 1 and r.stderr.strip() == ("fnops: functions/evil/releases: a symbolic link is on the "
                                                      "way; pins are written only to real folders inside the "
                                                      "repository"), r.stderr
    assert not os.path.exists(os.path.join(outside, "releases")) and git(bare, "rev-parse", "main") == tip


# --- the image is in the function's own repository --------------------------------------

def test_a_function_without_image_needs_registry_and_gets_only_its_repository(repo, tmp_path):
    """The finding: any registry was pinned for a function without `image:`."""
    work, bare = repo
    tip = git(bare, "rev-parse", "main")
    mine = write(tmp_path / "hello.json", [row(work, "hello")])
    refused(pin(work, mine), bare, tip, "hello declares no `image:`; pass --registry")
    evil = write(tmp_path / "evil.json", [row(work, "hello", image=f"evil.example.com/x/hello:sha-1@{DIGEST}")])
    refused(pin(work, "--registry", REGISTRY, evil), bare, tip,
            f"evil.example.com/x/hello is not {REGISTRY}/hello, where `fnops ship --registry {REGISTRY}` pushes hello")
    other = write(tmp_path / "other.json", [row(work, "hello", image=f"{REGISTRY}/cat:sha-1@{DIGEST}")])
    refused(pin(work, "--registry", REGISTRY, other), bare, tip, f"{REGISTRY}/cat is not {REGISTRY}/hello")
    # a declared `image:` wins over --registry
    cat = write(tmp_path / "cat.json", [row(work, "cat", image=f"{REGISTRY}/cat:sha-1@{DIGEST}")])
    refused(pin(work, "--registry", REGISTRY, cat), bare, tip,
            f"{REGISTRY}/cat is not cat's repository registry.example.com/acme/cat")
    r = pin(work, "--registry", REGISTRY + "/", mine)
    assert r.returncode == 0, r.stderr
    pinned = git(bare, "show", "main:functions/hello/releases/dev.yaml")
    assert f"image: {REGISTRY}/hello:sha-1234567@{DIGEST}" in pinned and f"commit: {head(work)}" in pinned


# --- a result pins only what its job built --------------------------------------------

def test_a_result_pins_only_what_its_job_built(repo, tmp_path):
    """The finding: one matrix job could pin functions it did not build. A result records
    the commit and environment it was built for, and FUNCTION=PATH binds it to its job."""
    work, bare = repo
    tip = git(bare, "rev-parse", "main")
    sha = head(work)
    git(work, "commit", "--quiet", "--allow-empty", "-m", "a later commit, not yet built")
    later = {"GITHUB_SHA": head(work)}  # a run of that commit
    cat = write(tmp_path / "fnops-cat" / "r.json", [row(work, "cat", sourceCommit=sha)])
    both = write(tmp_path / "fnops-cat" / "both.json", [row(work, "cat", sourceCommit=sha),
                                                       row(work, "hello", sourceCommit=sha)])
    hello = write(tmp_path / "fnops-hello" / "r.json", [row(work, "hello", sourceCommit=sha)])
    cases = [
        # cat's job claims hello as well
        ((f"cat={both}",), {}, "both.json: functions[1]: hello was not built by this job; the result of cat's "
                               "job pins cat only"),
        # two results for one function: one of them is not its job's
        ((f"cat={cat}", both), {}, "both.json: functions[0]: cat is also in"),
        # a result of another commit (another run, another branch) under this commit's name
        ((f"cat={cat}",), later, f"built from commit '{sha}', not {head(work)} being pinned"),
        ((write(tmp_path / "prod.json", [row(work, "cat", environment="prod", sourceCommit=sha)]),), {},
         "built for environment 'prod', not 'dev' being pinned"),
        ((write(tmp_path / "nosrc.json", [{k: v for k, v in row(work, "cat").items() if k != "sourceCommit"}]),),
         {}, "functions[0].sourceCommit: missing"),
        ((write(tmp_path / "dry.json", [row(work, "cat", pushed=False, sourceCommit=sha)]),), {},
         "cat was not pushed (a dry run)"),
        ((write(tmp_path / "tag.json", [row(work, "cat", image="registry.example.com/acme/cat:x", sourceCommit=sha)]),),
         {}, "functions[0].image: 'registry.example.com/acme/cat:x' is not pinned by digest"),
        (("Cat=" + cat,), {}, "'Cat=" + cat[:20]),
    ]
    for args, env, fragment in cases:
        refused(pin(work, "--registry", REGISTRY, *args, env={"GITHUB_SHA": sha, **env}), bare, tip, fragment)
    # The plan names what the matrix was made to build, at this commit, for this environment.
    plan = {"plan": [{"function": "cat", "environment": "dev", "reason": "unpinned", "sourceCommit": sha,
                      "pinnedCommit": None}], "skipped": []}
    only_cat = write(tmp_path / "plan.json", plan)
    refused(pin(work, "--registry", REGISTRY, "--plan", only_cat, f"cat={cat}", f"hello={hello}",
                env={"GITHUB_SHA": sha}), bare, tip, "hello is not in the plan")
    other_plan = write(tmp_path / "other-plan.json", json.dumps([dict(plan["plan"][0], sourceCommit=later["GITHUB_SHA"])]))
    refused(pin(work, "--registry", REGISTRY, "--plan", other_plan, f"cat={cat}", env={"GITHUB_SHA": sha}), bare, tip,
            f"plan[0]: planned at commit '{later['GITHUB_SHA']}', not {sha} being pinned")
    # What a matrix really made: each job's own result, bound to it, the plan of this run.
    plan["plan"].append(dict(plan["plan"][0], function="hello"))
    r = pin(work, "--registry", REGISTRY, "--plan", write(tmp_path / "plan2.json", json.dumps(plan["plan"])),
            f"cat={cat}", f"hello={hello}", "--output", "json", env={"GITHUB_SHA": sha})
    assert r.returncode == 0, r.stderr
    assert sorted((f["function"], f["sourceCommit"]) for f in json.loads(r.stdout)["functions"]) == [
        ("cat", sha), ("hello", sha)]
    assert int(git(bare, "rev-list", "--count", "main")) == 2  # one commit for both


# --- the file itself: bounded before it is parsed ---------------------------------------

def _limits():
    resource.setrlimit(resource.RLIMIT_CPU, (5, 5))  # a hard stop well past the asserted second
    resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))


BAD_FILES = {
    "deep-arrays": ("[" * 200_000, "nests deeper than 8 levels"),
    "deep-objects": ('{"functions": ' + '{"a": ' * 50_000 + "1" + "}" * 50_001, "nests deeper than 8 levels"),
    "deep-inside-a-row": ('{"functions": [{"function": ' + "[" * 9 + "]" * 9 + "}]}", "nests deeper than 8 levels"),
    "brackets-in-strings-are-text": ('{"functions": [{"function": "' + "[" * 100 + '"}]}',
                                     "is not a function name"),
    "huge": ('{"functions": [], "pad": "' + "x" * (2 << 20) + '"}', "larger than 1024 KiB"),
    "not-json": ("{'functions': []}", "not JSON"),
    "nan": ('{"functions": [{"function": NaN}]}', "not JSON"),
    "a-list": ("[]", "no 'functions' list"),
    "rows-not-objects": ('{"functions": ["hello"]}', "functions[0]: not an object"),
    "name-not-text": ('{"functions": [{"function": 7}]}', "functions[0].function: 7; want text"),
}


@pytest.mark.parametrize("text,fragment", BAD_FILES.values(), ids=BAD_FILES.keys())
def test_a_hostile_results_file_is_one_line_exit_2(repo, tmp_path, text, fragment):
    """The finding: deeply nested results JSON gave a traceback."""
    work, bare = repo
    tip = git(bare, "rev-parse", "main")
    path = write(tmp_path / "r.json", text)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FNOPS_", "GITHUB_", "GITOPS_"))}
    env.update(GITHUB_SHA=head(work), GITHUB_ACTIONS="true")
    with open(tmp_path / "out", "w+") as out, open(tmp_path / "err", "w+") as err:
        p = subprocess.Popen([shutil.which("fnops"), "pin", "--env", "dev", "--registry", REGISTRY, path], cwd=work,
                             env=env, stdout=out, stderr=err, stdin=subprocess.DEVNULL, preexec_fn=_limits)
        _, status, usage = os.wait4(p.pid, 0)
        p.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        done = subprocess.CompletedProcess(p.args, p.returncode, out.read(), err.read())
    refused(done, bare, tip, fragment)
    assert usage.ru_utime + usage.ru_stime < 1.0  # CPU of fnops itself: nothing recursed or looped


def test_a_fifo_is_refused_without_waiting_for_a_writer(repo, tmp_path):
    work, bare = repo
    tip = git(bare, "rev-parse", "main")
    os.mkfifo(tmp_path / "r.json")
    refused(pin(work, str(tmp_path / "r.json")), bare, tip, "r.json: not a regular file")


# --- the pin action: a result bound to its job by its artifact's folder -------------------

def _action_env(work):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ARGOCD_", "FNOPS_", "GITHUB_", "GITOPS_",
                                                                     "ACTIONS_"))}
    env.update(GITHUB_SHA=head(work), GITHUB_REF="refs/heads/main", GITHUB_REPOSITORY="acme/functions",
               GITHUB_SERVER_URL="https://github.com")
    return env


def run_action(tmp_path, work, action, github=None, extra_env=None, **inputs):
    import uuid

    return gha_runner.run_action(os.path.join(ROOT, action), inputs, workspace=work,
                                 temp=str(tmp_path / f"runner-{uuid.uuid4().hex[:8]}"), env={**_action_env(work), **(extra_env or {})},
                                 github={"token": GITHUB_JOB_TOKEN, **(github or {})},
                                 uses=gha_runner.fnops_stubs(str(tmp_path / "stubs"))[0])


def test_the_pin_action_binds_each_result_to_its_jobs_artifact(repo, tmp_path):
    work, bare = repo
    tip = git(bare, "rev-parse", "main")
    results = tmp_path / "results"
    # cat's job also claims hello (whose own job failed and left no result)
    write(results / "fnops-cat" / "result-cat.json", [row(work, "cat"), row(work, "hello")])
    r = run_action(tmp_path, work, "actions/pin/action.yml", env="dev", results=str(results), registry=REGISTRY)
    step = r.step("pin")
    assert step.outcome == "failure" and step.code == 2, step.stderr
    assert "hello was not built by this job; the result of cat's job pins cat only" in step.stderr
    assert git(bare, "rev-parse", "main") == tip
    # a result in no job's folder (merge-multiple): nobody can say whose it is
    shutil.rmtree(results)
    write(results / "result-cat.json", [row(work, "cat")])
    r = run_action(tmp_path, work, "actions/pin/action.yml", env="dev", results=str(results), registry=REGISTRY)
    assert r.step("pin").outcome == "failure" and git(bare, "rev-parse", "main") == tip
    (error,) = [a for a in r.annotations if a.kind == "error"]
    assert "every result must be in a folder fnops-<function>" in error.message
    # each job's own result, with the plan of this run: pinned in one commit
    shutil.rmtree(results)
    write(results / "fnops-cat" / "result-cat.json", [row(work, "cat")])
    write(results / "fnops-hello" / "result-hello.json", [row(work, "hello")])
    plan = json.dumps([{"function": f, "environment": "dev", "reason": "unpinned", "sourceCommit": head(work),
                        "pinnedCommit": None} for f in ("cat", "hello")])
    r = run_action(tmp_path, work, "actions/pin/action.yml", env="dev", results=str(results), registry=REGISTRY,
                   plan=plan)
    assert r.ok, r.step("pin").stderr
    assert r.outputs["commit"] == git(bare, "rev-parse", "main") and int(git(bare, "rev-list", "--count", "main")) == 2
    assert not [f for f in os.listdir(r.step("pin").env["RUNNER_TEMP"]) if f.startswith("fnops-plan-")]


# --- the GitHub token goes only to the GitHub host ----------------------------------------

def _basic(token: str) -> str:
    return base64.b64encode(f"x-access-token:{token}".encode()).decode()


def test_the_actions_github_token_never_reaches_a_non_github_host(repo, tmp_path):
    """The finding: the action handed its GitHub token over as GITOPS_TOKEN, which skipped
    the GitHub-host check, and a `gitops-repo` elsewhere received `x-access-token:ghs_…`."""
    from git_http import GitHttpServer

    work, bare = repo
    image = f"registry.example.com/acme/cat:sha-1234567@{DIGEST}"
    with GitHttpServer(os.path.dirname(bare), GITHUB_JOB_TOKEN) as srv:
        url = f"{srv.url}/{os.path.basename(bare)}"
        for action, inputs in (("action.yml", {"plan": "true", "registry": REGISTRY}),  # plans on the tip: a clone
                               ("actions/bump/action.yml", {"function": "cat", "image": image}),
                               ("actions/pin/action.yml", {"results": str(tmp_path / "results"),
                                                           "registry": REGISTRY})):
            step_id = "ship" if action == "action.yml" else action.split("/")[1]
            write(tmp_path / "results" / "fnops-cat" / "r.json", [row(work, "cat")])
            r = run_action(tmp_path, work, action, env="dev", **{"gitops-repo": url}, **inputs)
            step = r.step(step_id)
            assert step.outcome == "failure" and "authentication failed" in step.stderr, step.stderr
            assert srv.seen_auth and not any(srv.seen_auth), srv.seen_auth  # asked, never with a header
            assert not any(GITHUB_JOB_TOKEN in line for line in r.log)  # the log, as the runner shows it
            srv.seen_auth.clear()
        # The same token does reach the host that issued it: what the test watches is real.
        r = run_action(tmp_path, work, "actions/bump/action.yml", env="dev", function="cat", image=image,
                       **{"gitops-repo": url}, extra_env={"GITHUB_SERVER_URL": srv.url})
        assert r.ok, r.step("bump").stderr
        assert f"Basic {_basic(GITHUB_JOB_TOKEN)}" in srv.seen_auth
    # A token the user passes is theirs for the host they named.
    mine = "glpat-" + "U" * 20
    with GitHttpServer(os.path.dirname(bare), mine) as srv:
        r = run_action(tmp_path, work, "actions/bump/action.yml", env="dev", function="cat",
                       image=image.replace("a" * 64, "b" * 64), token=mine,
                       **{"gitops-repo": f"{srv.url}/{os.path.basename(bare)}"})
        assert r.ok, r.step("bump").stderr
        assert set(srv.seen_auth) <= {"", f"Basic {_basic(mine)}"} and f"Basic {_basic(mine)}" in srv.seen_auth


@pytest.mark.parametrize("server,remote,sent", [
    ("https://github.com", "https://github.com/acme/gitops.git", True),
    ("https://GitHub.com:443/", "https://x-access-token:t@github.com/acme/gitops.git", True),
    ("https://ghe.example.com", "https://ghe.example.com:443/acme/gitops.git", True),
    ("https://github.com", "https://github.com.evil.example/acme/gitops.git", False),
    ("https://github.com", "https://github.com@evil.example/acme/gitops.git", False),
    ("https://github.com", "https://evil.example/github.com/acme/gitops.git", False),
    ("https://github.com", "https://github.com:8443/acme/gitops.git", False),
    ("https://ghe.example.com", "https://github.com/acme/gitops.git", False),
    ("https://github.com", "git@github.com:acme/gitops.git", False),  # ssh: no header is ever sent
    ("https://github.com", "https://github.com:bad/acme/gitops.git", False),
])
def test_github_token_host_match_is_exact(monkeypatch, server, remote, sent):
    from fnops.delivery.origin import token_from

    monkeypatch.delenv("GITOPS_TOKEN", raising=False)
    monkeypatch.setenv("GITHUB_TOKEN", GITHUB_JOB_TOKEN)
    monkeypatch.setenv("GITHUB_SERVER_URL", server)
    assert token_from("GITOPS_TOKEN", remote) == (GITHUB_JOB_TOKEN if sent else None)


def test_a_legacy_workflow_command_in_a_quoted_value_stays_text(tmp_path):
    """The runner reads `##[cmd]` anywhere in a line: a value quoted in an error (here a
    folder's wrong `name:`) made a second, forged annotation out of fnops' own error line."""
    d = tmp_path / "fn"
    d.mkdir()
    (d / "function.yaml").write_text('runtime: python3.12\nname: "##[error]forged"\n')
    r = fnops("validate", str(d), cwd=tmp_path, env={"GITHUB_ACTIONS": "true"})
    assert r.returncode == 2
    cmds = gha_runner.Commands([])
    for line in gha_runner.split_lines((r.stderr + r.stdout).encode()):
        cmds.feed(line)
    (annotation,) = cmds.annotations  # fnops' own, on the file and line
    assert annotation.properties == {"file": f"{d}/function.yaml", "line": "2", "col": "7"}
    assert "'#\\x23[error]forged' is not this folder's name" in annotation.message
    assert cmds.masks == [] and [p[0] for p in cmds.processed] == ["error"]
