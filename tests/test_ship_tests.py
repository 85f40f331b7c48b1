"""function.yaml `test:` in `fnops ship`, for real: buildah builds from a base served by a
loopback docker-registry, the test runs inside the image just built, and only what passed
is pushed (the registry's tags say) and pinned (the bare remote's history says)."""

import hashlib
import json
import os
import time

import pytest
import yaml

import containers
from conftest import fnops
from gitrepo import git, head, show

pytestmark = pytest.mark.skipif(containers.have_tools() is not None,
                                reason=f"needs {containers.have_tools()} (installed by .ci/run)")

HANDLER = 'def handle(event, context):\n    return {"hello": event}\n'
# A real unittest suite in the folder, which only passes inside the built image: the
# image's working directory, its user and the environment the generated Dockerfile sets.
UNIT_TEST = '''import os
import unittest

import handler


class HandlerTest(unittest.TestCase):
    def test_handle(self):
        self.assertEqual(handler.handle("x", {}), {"hello": "x"})

    def test_runs_in_the_image(self):
        self.assertEqual(os.getcwd(), "/app")
        self.assertEqual(os.getuid(), 65532)
        self.assertEqual(os.environ.get("FNOPS_HANDLER"), "handler:handle")
        self.assertNotIn("GITHUB_TOKEN", os.environ)  # fnops' own environment stays outside
'''
PASSING = "test:\n  command: [python, -m, unittest, discover, -s, tests]\n"
DOCKERFILE = "FROM {base}\nCOPY hello.txt /hello.txt\nCMD [\"cat\", \"/hello.txt\"]\n"
# 200 numbered lines, a line on stderr, exit 3: the tail must hold the end, not the start.
# buildah relays the container's stdout and stderr through two pipes, so lines written close
# together on both may swap: the stderr line comes a moment after the last stdout one.
NOISY_FAIL = ('test:\n  command: [sh, -c, "i=0; while [ $i -lt 200 ]; do echo line $i; i=$((i+1)); done; '
              'cat secret.txt; echo ::error::forged by the test; sleep 1; echo boom >&2; exit 3"]\n')
TOKEN = "ghs_baked_into_the_image_0123456789"


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    with containers.registry_with_base(str(tmp_path_factory.mktemp("registry"))) as rb:
        yield rb


@pytest.fixture
def repo(tmp_path, registry):
    """A functions repo: `hello` (python, with a unittest suite) and `cat` (a Dockerfile),
    neither with `test:` yet; -> (work tree, bare origin, write(path, text) committing it)."""
    _, base = registry
    bare = str(tmp_path / "origin.git")
    git(tmp_path, "init", "--quiet", "--bare", "--initial-branch=main", bare)
    work = tmp_path / "work"
    git(tmp_path, "init", "--quiet", "--initial-branch=main", str(work))
    hello = work / "functions" / "hello"
    (hello / "tests").mkdir(parents=True)
    (hello / "function.yaml").write_text("runtime: python3.11\n")
    (hello / "handler.py").write_text(HANDLER)
    (hello / "requirements.txt").write_text("# none\n")
    (hello / "tests" / "test_handler.py").write_text(UNIT_TEST)
    (hello / "secret.txt").write_text(f"token={TOKEN}\n")
    cat = work / "functions" / "cat"
    cat.mkdir(parents=True)
    (cat / "function.yaml").write_text("runtime: dockerfile\nhttp: {visibility: cluster-local}\n")
    (cat / "Dockerfile").write_text(DOCKERFILE.format(base=base))
    (cat / "hello.txt").write_text("hi\n")
    git(work, "add", "-A")
    git(work, "commit", "--quiet", "-m", "functions")
    git(work, "remote", "add", "origin", bare)
    git(work, "push", "--quiet", "origin", "main")

    def write(path, text, mode="a"):
        with open(os.path.join(work, "functions", path), mode) as f:
            f.write(text)
        git(work, "commit", "--quiet", "-am", f"edit {path}")

    return str(work), bare, write


def ship(work, registry, *args, **extra_env):
    """Each test's functions go to a repository namespace of its own in the shared registry
    (named after its work tree), so an empty tag list means this test pushed nothing."""
    reg, base = registry
    return fnops("ship", "--env", "dev", "--registry", f"{reg.host}/{namespace(work)}", "--base-image", base, *args,
                 cwd=work,
                 env={"GITHUB_SHA": head(work), "GITHUB_REPOSITORY": "acme/functions", "GITHUB_REF": "refs/heads/main",
                      "GITHUB_TOKEN": TOKEN, **containers.BUILDAH_ENV, **extra_env}, timeout=600)


def namespace(work) -> str:
    return "fns-" + hashlib.sha256(str(work).encode()).hexdigest()[:12]


def tags(reg, work):
    return {n: reg.tags(f"{namespace(work)}/{n}") for n in ("cat", "hello")}


def commits(bare) -> int:
    return int(git(bare, "rev-list", "--count", "main"))


def test_a_passing_test_ships_and_pins_and_json_shows_it(repo, registry, tmp_path):
    """The plan names the command; ship runs it in the image, then pushes and pins."""
    work, bare, write = repo
    reg, _ = registry
    write("hello/function.yaml", PASSING)
    r = ship(work, registry, "--plan", "--output", "json")
    assert r.returncode == 0, r.stderr
    plan = {p["function"]: p["test"] for p in json.loads(r.stdout)["plan"]}
    assert plan == {"hello": {"command": ["python", "-m", "unittest", "discover", "-s", "tests"],
                              "timeout": 600}, "cat": None}
    text = ship(work, registry, "--plan")
    assert "hello [dev] unpinned, then test: python -m unittest discover -s tests (timeout 600s)" in text.stdout
    assert tags(reg, work) == {"cat": [], "hello": []}  # a plan builds nothing

    summary = tmp_path / "summary.md"
    r = ship(work, registry, "--output", "json", GITHUB_STEP_SUMMARY=str(summary))
    assert r.returncode == 0, r.stderr
    out = {f["function"]: f for f in json.loads(r.stdout)["functions"]}
    test = out["hello"]["test"]
    rows = {line.split("|")[1].strip(): line.split("|")[-2].strip() for line in summary.read_text().splitlines()
            if line.startswith("| `")}
    assert rows["`cat`"] == "—" and rows["`hello`"].startswith("passed in "), summary.read_text()
    assert test["status"] == "passed" and test["exitCode"] == 0 and 0 < test["seconds"] < 120
    assert test["command"][:3] == ["python", "-m", "unittest"] and out["cat"]["test"] is None
    sha = head(work)
    assert tags(reg, work) == {"cat": [f"sha-{sha[:7]}"], "hello": [f"sha-{sha[:7]}"]}
    assert commits(bare) == 2 and json.loads(r.stdout)["commit"] == git(bare, "rev-parse", "main")
    pin = yaml.safe_load(show(bare, "functions/hello/releases/dev.yaml"))
    assert pin["image"] == f"{reg.host}/{namespace(work)}/hello:sha-{sha[:7]}@{reg.manifest_digest(f'{namespace(work)}/hello', f'sha-{sha[:7]}')}"


def test_a_failing_test_pushes_and_pins_nothing_and_shows_its_own_tail(repo, registry):
    """With two functions shipped together, one failing test stops the run as a failed build
    does: nothing is pushed, not even the function whose test passed, and nothing pinned."""
    work, bare, write = repo
    reg, _ = registry
    write("hello/function.yaml", NOISY_FAIL)
    write("cat/function.yaml", "test: {command: [cat, /hello.txt]}\n")
    before = commits(bare)
    r = ship(work, registry, "--output", "json", "--jobs", "2")
    assert r.returncode == 1
    lines = r.stderr.strip().splitlines()
    assert lines[-1].startswith("fnops: test of hello failed: exit 3 after ") and "nothing was pushed or pinned" \
        in lines[-1], r.stderr
    tail = [line[4:] for line in lines if line.startswith("  | ")]
    assert len(tail) == 50 and tail[-1] == "boom" and tail[0] == "line 153"  # the last 50 lines, in order
    assert "line 152" not in r.stderr and "subprocess exited" not in r.stderr  # not buildah's own epilogue
    assert TOKEN not in r.stderr + r.stdout and "token=***" in tail  # masked
    out = {f["function"]: f for f in json.loads(r.stdout)["functions"]}
    assert out["hello"]["test"]["status"] == "failed" and out["hello"]["test"]["exitCode"] == 3
    assert out["cat"]["test"]["status"] == "passed" and "test of cat" not in r.stderr
    assert not any(f["pushed"] for f in out.values()) and out["cat"]["digest"] is None
    assert tags(reg, work) == {"cat": [], "hello": []}
    assert commits(bare) == before


def test_in_github_actions_the_tail_is_a_log_group_whose_commands_are_not_obeyed(repo, registry):
    import gha_runner

    work, bare, write = repo
    reg, _ = registry
    write("hello/function.yaml", NOISY_FAIL)
    r = ship(work, registry, "--function", "hello", GITHUB_ACTIONS="true")
    assert r.returncode == 1
    log = gha_runner.Commands([])
    for line in gha_runner.split_lines(r.stderr.encode()):
        log.feed(line)
    assert log.groups[-1].startswith("test of hello failed: exit 3 after ") and not log.errors
    assert "::error::forged by the test" in log.log, log.log[-60:]  # shown as text…
    assert not any("forged" in a.message for a in log.annotations)  # …never an annotation
    start = log.log.index(f"[group] {log.groups[-1]}")
    group = log.log[start:log.log.index("[endgroup]", start)]
    assert "boom" in group and "line 199" in group
    assert tags(reg, work)["hello"] == []


ISOLATED = """import os, socket, sys
try:
    socket.create_connection(("127.0.0.1", {port}), timeout=3)
    sys.exit("reached the registry on the host's loopback")
except OSError:
    pass
pids = [p for p in os.listdir("/proc") if p.isdigit()]
if len(pids) > 5:
    sys.exit(f"sees {{len(pids)}} processes of the host")
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="new namespaces for the test need root (as in CI and Tekton)")
def test_the_test_runs_without_the_network_and_without_seeing_fnops(repo, registry):
    """buildah's chroot isolation ignores --network none: without namespaces of its own a test
    reaches the network and reads the environ of the fnops process that holds the tokens."""
    work, bare, write = repo
    reg, _ = registry
    code = ISOLATED.format(port=reg.host.rsplit(":", 1)[1])
    write("hello/function.yaml", "test:\n  command: [python, -c, " + json.dumps(code) + "]\n")
    r = ship(work, registry, "--function", "hello", "--dry-run", "--output", "json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["functions"][0]["test"]["status"] == "passed"
    assert "chroot isolation" not in r.stderr  # isolated: nothing to warn about


def test_a_dry_run_runs_the_test_and_pushes_nothing(repo, registry):
    work, bare, write = repo
    reg, _ = registry
    write("hello/function.yaml", "test: {command: 'python -c \"import handler\"', timeout: 1m}\n")
    r = ship(work, registry, "--function", "hello", "--dry-run", "--output", "json")
    assert r.returncode == 0, r.stderr
    (row,) = json.loads(r.stdout)["functions"]
    assert row["test"]["status"] == "passed" and row["test"]["command"] == ["python", "-c", "import handler"]
    assert row["pushed"] is False and tags(reg, work)["hello"] == [] and commits(bare) == 1


def test_a_test_past_its_timeout_is_stopped_and_reported(repo, registry):
    work, bare, write = repo
    reg, _ = registry
    write("hello/function.yaml", 'test: {command: "sh -c \'echo started; sleep 417\'", timeout: 8s}\n')
    before = commits(bare)
    start = time.monotonic()
    r = ship(work, registry, "--function", "hello", "--output", "json")
    assert r.returncode == 1
    assert r.stderr.strip().splitlines()[-1].startswith("fnops: test of hello timed out after 8s and was stopped")
    assert "  | started" in r.stderr
    row = json.loads(r.stdout)["functions"][0]["test"]
    assert row["status"] == "timed-out" and row["exitCode"] is None and 8 <= row["seconds"] < 25
    assert time.monotonic() - start < 300
    # Nothing of the test is left running.
    left = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmdline = f.read()
                if b"sleep\x00417" in cmdline or b"sleep 417" in cmdline:
                    left.append(pid)
        except OSError:
            pass
    assert left == []
    assert tags(reg, work)["hello"] == [] and commits(bare) == before


def test_an_invalid_test_is_exit_2_naming_the_place_and_builds_nothing(repo, registry):
    work, bare, write = repo
    reg, _ = registry
    write("hello/function.yaml", "test:\n  command: [python, 3]\n  timeout: 2h\n")
    r = ship(work, registry)
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.splitlines() == [
        "functions/hello/function.yaml:3:21: test.command[1]: expected a non-empty string, got 3; quote it "
        "(every word of the command is a string)",
        "functions/hello/function.yaml:4:12: test.timeout: '2h' is out of range; allowed 1s–1h"]
    assert tags(reg, work) == {"cat": [], "hello": []} and commits(bare) == 1


@pytest.mark.parametrize("text,message", [
    ("test: python -m unittest\n", "2:7: test: expected a mapping with keys command"),
    ("test: {timeout: 5m}\n", "2:7: test.command: is required: the command to run inside the built image"),
    ("test: {command: \"python -c 'x\"}\n", "2:17: test.command: 'python -c 'x' cannot be split into words "
                                            "(no closing quotation)"),
    ("test: {command: []}\n", "2:17: test.command: is empty"),
    ("test: {command: [sh], timeout: 0s}\n", "2:32: test.timeout: '0s' is out of range; allowed 1s–1h"),
    ("test: {command: [sh], timout: 5m}\n", "2:23: test.timout: unknown key; did you mean 'timeout'?"),
    ("test: {command: '" + "a " * 257 + "'}\n", "2:17: test.command: 257 words; at most 256"),
])
def test_validate_names_file_line_col_for_a_bad_test(tmp_path, text, message):
    folder = tmp_path / "hello"
    folder.mkdir()
    (folder / "handler.py").write_text(HANDLER)
    (folder / "function.yaml").write_text("runtime: python3.11\n" + text)
    r = fnops("validate", str(folder), cwd=str(tmp_path))
    assert r.returncode == 2
    assert r.stderr.startswith(f"{folder}/function.yaml:{message}"), r.stderr


def test_runtime_image_cannot_declare_a_test(tmp_path):
    folder = tmp_path / "hello"
    folder.mkdir()
    (folder / "function.yaml").write_text("runtime: image\nimage: ghcr.io/acme/hello\ntest: {command: [true]}\n")
    r = fnops("validate", str(folder), cwd=str(tmp_path))
    assert r.returncode == 2 and f"{folder}/function.yaml:3:7: test: runtime 'image' builds nothing" in r.stderr


def test_an_overlay_changes_the_test_per_environment(tmp_path):
    from fnops.spec import load_function

    folder = tmp_path / "hello"
    folder.mkdir()
    (folder / "handler.py").write_text(HANDLER)
    (folder / "function.yaml").write_text(
        "runtime: python3.11\ntest: {command: 'python -m unittest', timeout: 90s}\n"
        "environments:\n  dev: {}\n  prod:\n    test: {command: [python, -m, unittest, -v]}\n")
    dev, prod = load_function(str(folder), "dev").test, load_function(str(folder), "prod").test
    assert (dev.command, dev.timeout) == (("python", "-m", "unittest"), 90)
    assert (prod.command, prod.timeout) == (("python", "-m", "unittest", "-v"), 90)  # merged key by key


def test_docker_builds_a_tested_function_into_docker_first(monkeypatch, tmp_path):
    """buildx pushes as it builds, so a tested function is loaded into docker and run there
    (this machine has no Docker daemon: the command lines are what they promise)."""
    from fnops.delivery.build import Docker
    from fnops.delivery.imagetest import _argv

    (tmp_path / "docker").write_text("#!/bin/sh\nexit 0\n")
    (tmp_path / "docker").chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    d = Docker()
    cmd = d.command("/c", "/c/D", "r:t", "/m", push=False, load=True)
    assert cmd[cmd.index("--output") + 1] == "type=docker"
    with _argv(d, "r:t", ("python", "-m", "unittest")) as (argv, _):
        assert argv[:2] == ["docker", "run"] and argv[argv.index("--network") + 1] == "none"
        assert argv[argv.index("--entrypoint") + 1] == "python" and argv[-3:] == ["r:t", "-m", "unittest"]


def test_the_kept_output_is_bounded_however_much_a_test_prints():
    """A 3 MB line without end and 10,000 more lines: 50 lines kept, each at most 8 KiB, and
    the tail shown at most 8 KiB."""
    from fnops.delivery.imagetest import _bounded, _run_bounded

    script = "head -c 3000000 /dev/zero | tr '\\0' x; echo; i=0; while [ $i -lt 10000 ]; do echo n$i; i=$((i+1)); done"
    code, lines = _run_bounded(["sh", "-c", script], None, 60, lambda: None)
    assert code == 0 and len(lines) <= 53 and lines[-1] == "n9999" and max(map(len, lines)) <= 8192
    code, lines = _run_bounded(["sh", "-c", "head -c 3000000 /dev/zero | tr '\\0' x; echo; echo end; exit 4"],
                               None, 60, lambda: None)
    assert code == 4 and [len(line) for line in lines] == [8192, 3]
    assert _bounded(lines) == ["end"]  # together at most 8 KiB: the long line does not fit
