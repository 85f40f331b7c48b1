"""Run a function's `test:` inside the image `fnops ship` has just built, before any push.

The command runs in the built image as it would in production: the image's own working
directory, environment and user, no shell around it, and no network (`--network none`), so a
test passes or fails on what is in the image, not on what the runner can reach. buildah
runs it in a working container made from the local image (`buildah from --pull-never` +
`buildah run`); docker in `docker run --rm` of the image buildx loaded.

Only a bounded tail of what the test prints is kept (the last 50 lines, at most 8 KiB): a
test that prints gigabytes costs no memory, and a failure shows where it ended. Values of
this process's token-like variables are masked in it (the image never gets them, but a test
could print what a build baked in from the same values).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import threading
import time
import uuid
from collections import deque, namedtuple

from ..errors import PermanentError

TAIL_LINES, TAIL_BYTES = 50, 8192
STOP_GRACE = 5  # seconds between SIGTERM and SIGKILL for a test past its timeout

# status: passed | failed | timed-out; exit_code None when timed out; tail: lines.
Outcome = namedtuple("Outcome", "function status seconds exit_code tail command timeout")

# What buildah itself adds after the command's own output when it exits non-zero.
_BUILDAH_EPILOGUE = re.compile(r"^(subprocess exited (with status \d+|on \w+)|Error: exit status \d+)$")
_SECRET_NAME = re.compile(r"TOKEN|SECRET|PASSWORD|PASSWD|PRIVATE|CREDENTIAL|API_?KEY|ACCESS_?KEY", re.I)


def as_dict(o: Outcome | None) -> dict | None:
    """The outcome as `--output json` shows it per function."""
    if o is None:
        return None
    return {"status": o.status, "seconds": o.seconds, "exitCode": o.exit_code, "command": list(o.command),
            "timeout": o.timeout}


def plan_dict(test) -> dict | None:
    """A declared test as `--plan` shows it: what will run."""
    return None if test is None else {"command": list(test.command), "timeout": test.timeout}


def shown_command(command) -> str:
    import shlex

    return shlex.join(command)


class TestFailed(PermanentError):
    """One or more tests failed or timed out; nothing was pushed. `failed`: their outcomes;
    `results`: every built function as ship reports it (unpushed), for `--output json`."""

    __test__ = False  # not a pytest class, wherever a test module imports it

    def __init__(self, failed: list, results=()):
        self.failed = list(failed)
        self.results = list(results)
        first = self.failed[0]
        more = f" (and {len(self.failed) - 1} more)" if len(self.failed) > 1 else ""
        super().__init__(_why(first) + more + "; nothing was pushed or pinned")

    def format(self) -> str:
        """Each failed test's own last lines under a line saying how it ended (in GitHub
        Actions a log group per test, fenced by stop-commands: the lines are the test's, so
        no workflow command in them is obeyed), then the one-line error."""
        from ..escape import printable, untrusted_lines, workflow_data

        actions = os.environ.get("GITHUB_ACTIONS") == "true"
        out = []
        for o in self.failed:
            head = f"{_why(o)}; its last {len(o.tail)} lines of output"
            tail = [printable(line) for line in o.tail]
            if actions:
                out += [f"::group::{workflow_data(head)}", *untrusted_lines(tail), "::endgroup::"]
            else:
                out += [f"{head}:", *(f"  | {line}" for line in tail)]
        out.append(f"fnops: {self}")
        return "\n".join(out)


def _why(o: Outcome) -> str:
    from ..escape import shown
    from ..spec.units import _fmt_dur

    cmd = shown(shown_command(o.command), 120)  # the folder's text: one line, no workflow command
    if o.status == "timed-out":
        return f"test of {o.function} timed out after {_fmt_dur(o.timeout)} and was stopped ({cmd})"
    return f"test of {o.function} failed: exit {o.exit_code} after {o.seconds:.1f} s ({cmd})"


def run(b, fn, ref: str) -> Outcome:
    """Run `fn.test` in the local image `ref` that builder `b` built; -> its Outcome."""
    t = fn.test
    with _argv(b, ref, t.command) as (argv, stop):
        start = time.monotonic()
        code, tail = _run_bounded(argv, b.env if hasattr(b, "env") else dict(os.environ), t.timeout, stop)
        seconds = round(time.monotonic() - start, 2)
    if b.name == "buildah":
        while tail and _BUILDAH_EPILOGUE.match(tail[-1].strip()):
            tail.pop()
    tail = _masked(_bounded(tail[-TAIL_LINES:]))
    status = "timed-out" if code is None else "passed" if code == 0 else "failed"
    return Outcome(fn.name, status, seconds, code, tail, tuple(t.command), t.timeout)


def isolation(b) -> list:
    """What the buildah test run is wrapped in. buildah's chroot isolation (what fnops and the
    Tekton task use) shares the host's network and PID namespaces and ignores `--network none`
    (buildah 1.28, checked): a test could reach the network and read /proc/<pid>/environ of the
    fnops process, which holds the GitOps token. As root, util-linux `unshare` gives the run new
    network and PID namespaces (no interface but lo, only its own processes in /proc); oci
    isolation honours `--network none` itself."""
    if (b.env.get("BUILDAH_ISOLATION") or "chroot") != "chroot":
        return []
    unshare = shutil.which("unshare")
    return [unshare, "--net", "--pid", "--fork", "--mount-proc"] if unshare and os.geteuid() == 0 else []


def isolation_warning(b) -> str | None:
    """Said once per ship when a buildah test cannot be isolated (not root, or no unshare)."""
    if getattr(b, "name", "") == "buildah" and (b.env.get("BUILDAH_ISOLATION") or "chroot") == "chroot" \
            and not isolation(b):
        return ("`test:` runs under buildah's chroot isolation without new namespaces (needs root and util-linux "
                "unshare): the test shares this machine's network and can see its processes")
    return None


@contextlib.contextmanager
def _argv(b, ref: str, command):
    """-> (argv running `command` in the image, a call that stops it for good)."""
    name = f"fnops-test-{uuid.uuid4().hex[:12]}"
    if b.name == "buildah":
        p = subprocess.run([*b.exe, "from", "--pull-never", "--quiet", "--name", name, ref], env=b.env,
                           capture_output=True, text=True)
        if p.returncode != 0:
            last = (p.stderr.strip().splitlines() or ["no output"])[-1]
            raise PermanentError(f"cannot start a container of {ref} to test it: {last}")
        try:
            yield [*isolation(b), *b.exe, "run", "--network", "none", name, "--", *command], lambda: None
        finally:
            subprocess.run([*b.exe, "rm", name], env=b.env, capture_output=True)
    else:
        # The docker client going away leaves its container running: stop it by name.
        kill = lambda: subprocess.run(["docker", "rm", "--force", name], capture_output=True)  # noqa: E731
        yield ["docker", "run", "--rm", "--name", name, "--network", "none", "--entrypoint", command[0], ref,
               *command[1:]], kill


def _run_bounded(argv, env, timeout: int, stop) -> tuple[int | None, list[str]]:
    """Run argv (stderr into stdout) in a session of its own; keep the last lines only (each
    cut at TAIL_BYTES).
    -> (exit code, or None when it outlived `timeout` and was stopped; tail lines)."""
    lines: deque = deque(maxlen=TAIL_LINES + 3)  # + what buildah adds after the command's own
    proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True)

    def read():
        # At most TAIL_BYTES at a time, so a line without end costs no more memory: its first
        # TAIL_BYTES are kept and the rest skipped up to its newline.
        cut = False
        while raw := proc.stdout.readline(TAIL_BYTES):
            if not cut:
                lines.append(raw.decode("utf-8", "replace").rstrip("\r\n"))
            cut = not raw.endswith(b"\n")

    reader = threading.Thread(target=read, name="fnops-test-output", daemon=True)
    reader.start()
    try:
        code = proc.wait(timeout)
    except subprocess.TimeoutExpired:
        code = None
        _stop(proc, stop)
    except BaseException:  # interrupted: the test's session must not outlive fnops
        _stop(proc, stop)
        raise
    finally:
        reader.join(10)
        if not reader.is_alive():  # else something the test left behind holds the pipe open:
            proc.stdout.close()    # closing under a blocked read would wait for it
    return code, list(lines)


def _stop(proc, stop) -> None:
    """SIGTERM to the whole session (buildah and the command under it), SIGKILL if it stays."""
    for sig, grace in ((signal.SIGTERM, STOP_GRACE), (signal.SIGKILL, 10)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(grace)
            break
        except subprocess.TimeoutExpired:
            continue
    stop()


def _bounded(lines: list[str]) -> list[str]:
    """The last lines that fit TAIL_BYTES together."""
    out, size = [], 0
    for line in reversed(lines):
        size += len(line.encode()) + 1
        if size > TAIL_BYTES:
            break
        out.append(line)
    return out[::-1]


def _masked(lines: list[str]) -> list[str]:
    """Token-like values of this process's environment written as ***."""
    values = sorted({v for k, v in os.environ.items() if _SECRET_NAME.search(k) and len(v) >= 8}, key=len,
                    reverse=True)
    if not values:
        return lines
    out = []
    for line in lines:
        for v in values:
            line = line.replace(v, "***")
        out.append(line)
    return out
