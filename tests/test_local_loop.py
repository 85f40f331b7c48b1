"""`fnops run` + `fnops invoke` as processes: the image's own server on this machine, the
environment's overlay visible to the handler, plain HTTP and both CloudEvent modes, and a
restart when the folder changes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.request

import pytest

from conftest import fnops, stop_process
from containers import free_port

HANDLER = '''import os


def handle(event, context):
    ce = context["cloudevent"]
    return {"target": os.environ.get("TARGET"), "service": os.environ.get("K_SERVICE"), "event": event,
            "type": ce and ce.get("type"), "version": 1}
'''


@pytest.fixture
def served(tmp_path):
    fn = tmp_path / "functions" / "greeter"
    fn.mkdir(parents=True)
    (fn / "function.yaml").write_text("runtime: python3.12\nenv: {TARGET: world}\n"
                                      "environments:\n  dev: {env: {TARGET: dev-world}}\n")
    (fn / "handler.py").write_text(HANDLER)
    port = free_port()
    log = open(tmp_path / "run.log", "w")
    proc = subprocess.Popen([shutil.which("fnops"), "run", "greeter", "--env", "dev", "--port", str(port)],
                            cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=log, env=run_env(tmp_path))
    try:
        _wait(port, proc, tmp_path / "run.log")
        yield tmp_path, fn, port, proc
    finally:
        stop_process(proc)
        log.close()
    with pytest.raises(OSError):  # the function server went with `fnops run`
        urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1)


def run_env(tmp_path, **extra):
    """The environment of a test's `fnops run` and `fnops invoke`: their own state folder, so
    invoke finds this test's functions and no other run on the machine."""
    return {**os.environ, "FNOPS_RUN_DIR": str(tmp_path / "run-state"), **extra}


def _wait(port, proc, log, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text()
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1).close()
            return
        except urllib.error.HTTPError:
            return  # it answers
        except OSError:
            time.sleep(0.1)
    raise AssertionError("fnops run did not serve")


def invoke(tmp_path, port, *args):
    r = fnops("invoke", "--port", str(port), *args, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_plain_http_with_the_environment_overlay(served):
    tmp_path, _, port, _ = served
    out = invoke(tmp_path, port, "--data", '{"name": "ada"}')
    assert out == {"target": "dev-world", "service": "greeter", "event": {"name": "ada"}, "type": None, "version": 1}


def test_cloudevents_binary_and_structured(served):
    tmp_path, _, port, _ = served
    binary = invoke(tmp_path, port, "--cloudevent", "com.example.order.created", "--data", '{"id": 7}')
    assert binary["type"] == "com.example.order.created" and binary["event"] == {"id": 7}
    structured = invoke(tmp_path, port, "--cloudevent", "com.example.order.paid", "--structured", "--data", '{"id": 8}')
    assert structured["type"] == "com.example.order.paid" and structured["event"] == {"id": 8}


def test_a_change_to_the_folder_restarts_the_server(served):
    tmp_path, fn, port, proc = served
    (fn / "handler.py").write_text(HANDLER.replace('"version": 1', '"version": 2'))
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        r = fnops("invoke", "--port", str(port), "--data", "{}", cwd=tmp_path)
        if r.returncode == 0 and json.loads(r.stdout)["version"] == 2:
            break
        time.sleep(0.2)
    else:
        raise AssertionError("the new handler never answered")
    # An overlay change is a change too: function.yaml is watched.
    (fn / "function.yaml").write_text((fn / "function.yaml").read_text().replace("dev-world", "dev-mars"))
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        r = fnops("invoke", "--port", str(port), "--data", "{}", cwd=tmp_path)
        if r.returncode == 0 and json.loads(r.stdout)["target"] == "dev-mars":
            return
        time.sleep(0.2)
    raise AssertionError("the new overlay never reached the handler")


def test_invoke_reports_an_error_answer_and_an_absent_server(served, tmp_path):
    tmp, fn, port, _ = served
    bad = fnops("invoke", "--port", str(port), "--cloudevent", "x", "--structured", "--data", "not json", cwd=tmp)
    assert bad.returncode == 2 and "--data is not JSON" in bad.stderr
    r = fnops("invoke", "--port", str(free_port()), cwd=tmp)
    assert r.returncode == 1 and "is `fnops run` serving it?" in r.stderr


def test_run_refuses_what_it_cannot_serve(tmp_path):
    r = fnops("run", "../etc", cwd=tmp_path)
    assert r.returncode == 2 and "neither a function folder nor a function name" in r.stderr
    r = fnops("run", "missing", cwd=tmp_path)
    assert r.returncode == 2 and "no function 'missing'" in r.stderr
    os.makedirs(tmp_path / "functions" / "img")
    (tmp_path / "functions" / "img" / "function.yaml").write_text("runtime: image\nimage: ghcr.io/acme/img\n")
    r = fnops("run", "img", cwd=tmp_path)
    assert r.returncode == 2 and "runtime 'image' is built elsewhere" in r.stderr


# --- what the handler gets of this shell, and what its answer can do to a terminal ---------

SECRETS = {"GITHUB_TOKEN": "ghs_shell_secret_0123456789", "AWS_SECRET_ACCESS_KEY": "aws-shell-secret",
           "REGISTRY_PASSWORD": "registry-shell-secret", "GITOPS_TOKEN": "gitops-shell-secret"}
HOSTILE = ('''import os


def handle(event, context):
    if event == "env":
        return dict(os.environ)
    return ("clear\\x1b[2J\\x1b[3J title\\x1b]0;pwned\\x07 clipboard\\x1b]52;c;ZXZpbA==\\x07 csi\\u009b31m "
            "bell\\x07 over\\rwritten bidi\\u202egnp.exe tab\\tline\\nend")
''')


@pytest.fixture
def hostile(tmp_path):
    """A function that reports its environment or answers with terminal escape sequences,
    served by `fnops run` from a shell holding the developer's tokens."""
    fn = tmp_path / "functions" / "sly"
    fn.mkdir(parents=True)
    (fn / "function.yaml").write_text("runtime: python3.12\nenv: {TARGET: world}\n"
                                      "environments:\n  dev: {env: {TARGET: dev-world}}\n")
    (fn / "handler.py").write_text(HOSTILE)
    port = free_port()
    log = open(tmp_path / "run.log", "w")
    proc = subprocess.Popen([shutil.which("fnops"), "run", "sly", "--env", "dev", "--port", str(port), "--no-reload"],
                            cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=log, env=run_env(tmp_path, **SECRETS))
    try:
        _wait(port, proc, tmp_path / "run.log")
        yield tmp_path, port
    finally:
        stop_process(proc)
        log.close()


def test_the_handler_gets_none_of_the_shells_secrets(hostile):
    tmp_path, port = hostile
    seen = invoke(tmp_path, port, "--data", "env", "--content-type", "text/plain")
    assert not set(SECRETS) & set(seen) and not any(v in SECRETS.values() for v in seen.values()), sorted(seen)
    # what it does get: its own env after the overlay, what Knative sets, what Python needs
    assert seen["TARGET"] == "dev-world" and seen["K_SERVICE"] == "sly" and seen["PORT"] == str(port)
    assert seen["PATH"] == os.environ["PATH"] and seen["HOME"] == os.environ["HOME"]
    from fnops.local.run import PASSED, PASSED_PREFIXES

    ours = {"TARGET", "PORT", "HOST", "FNOPS_HANDLER", "K_SERVICE", "K_REVISION", "K_CONFIGURATION",
            "FNOPS_GRACEFUL_SECONDS", "PYTHONUNBUFFERED", "FNOPS_ACCESS_LOG"}
    assert {k for k in seen if k not in PASSED and not k.startswith(PASSED_PREFIXES)} <= ours


def test_invoke_escapes_an_answer_on_a_terminal_and_pipes_it_exactly(hostile):
    import pty
    import tty

    tmp_path, port = hostile
    master, slave = pty.openpty()
    tty.setraw(slave)  # the bytes fnops writes, not the line discipline's rewriting of them
    try:
        p = subprocess.Popen([shutil.which("fnops"), "invoke", "--port", str(port)], cwd=tmp_path, stdout=slave,
                             stderr=subprocess.PIPE)
        os.close(slave)
        shown = b""
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the terminal's other side closed
                break
            if not chunk:
                break
            shown += chunk
        assert p.wait(30) == 0, p.stderr.read()
        p.stderr.close()
    finally:
        os.close(master)
    text = shown.decode()
    assert not [c for c in text if (ord(c) < 0x20 and c not in "\n\t") or 0x7f <= ord(c) < 0xa0 or c == "\u202e"]
    assert text == ("clear\\x1b[2J\\x1b[3J title\\x1b]0;pwned\\x07 clipboard\\x1b]52;c;ZXZpbA==\\x07 csi\\x9b31m "
                    "bell\\x07 over\\x0dwritten bidi\\u202egnp.exe tab\tline\nend\n")
    # into a pipe (jq, a file): exactly what the function answered
    r = subprocess.run([shutil.which("fnops"), "invoke", "--port", str(port)], cwd=tmp_path, capture_output=True)
    assert r.returncode == 0 and r.stdout == ("clear\x1b[2J\x1b[3J title\x1b]0;pwned\x07 clipboard\x1b]52;c;ZXZpbA=="
                                              "\x07 csi\u009b31m bell\x07 over\rwritten bidi\u202egnp.exe tab\tline\n"
                                              "end").encode()


# --- what `fnops run` says when it is not serving, and how invoke finds what it serves ------

import hashlib  # noqa: E402
import re  # noqa: E402
import socket  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402
import uuid  # noqa: E402

# A runtime this interpreter is (no version warning), and one it is not (the warning).
SAME = f"python{sys.version_info.major}.{sys.version_info.minor}"
OTHER = "python3.13" if SAME != "python3.13" else "python3.12"

ECHO = '''import hashlib
import os


def handle(event, context):
    if event == "die":
        os._exit(7)
    body = {"method": context["method"], "path": context["path"], "params": context["params"],
            "trace": context["headers"].get("x-trace"), "type": context["headers"].get("content-type"),
            "name": os.environ.get("K_SERVICE")}
    if isinstance(event, bytes):
        body["sha256"], body["size"] = hashlib.sha256(event).hexdigest(), len(event)
    else:
        body["event"] = event
    ce = context["cloudevent"]
    if ce is not None:
        return {"specversion": "1.0", "type": "com.example.reply", "source": "/echo", "subject": ce["id"],
                "data": body}
    return body
'''


def make_function(tmp_path, name, handler=ECHO, yaml=None, requirements=None):
    fn = tmp_path / "functions" / name
    fn.mkdir(parents=True, exist_ok=True)
    (fn / "function.yaml").write_text(yaml or f"runtime: {SAME}\n")
    (fn / "handler.py").write_text(handler)
    if requirements is not None:
        (fn / "requirements.txt").write_text(requirements)
    return fn


class Run:
    """A `fnops run` process, its stderr in a file; the test stops it."""

    def __init__(self, tmp_path, *args, env=None):
        self.path = tmp_path / f"run-{uuid.uuid4().hex[:8]}.log"
        self.log = open(self.path, "w")
        self.proc = subprocess.Popen([shutil.which("fnops"), "run", *args], cwd=tmp_path, stdout=subprocess.DEVNULL,
                                     stderr=self.log, env=run_env(tmp_path, **(env or {})))

    @property
    def text(self) -> str:
        return self.path.read_text()

    def wait_for(self, pattern: str, timeout: float = 20, count: int = 1) -> re.Match:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = list(re.finditer(pattern, self.text, re.M))
            if len(found) >= count:
                return found[count - 1]
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError(f"no {pattern!r} (x{count}) in fnops run's output:\n{self.text}")

    def port(self) -> int:
        return int(self.wait_for(r"^serving \S+ .* on http://127\.0\.0\.1:(\d+)/").group(1))

    def stop(self):
        stop_process(self.proc)
        self.log.close()


@pytest.fixture
def runs():
    started = []

    def start(tmp_path, *args, env=None):
        r = Run(tmp_path, *args, env=env)
        started.append(r)
        return r

    yield start
    for r in started:
        r.stop()


def call(tmp_path, *args, **kw):
    return fnops("invoke", *args, cwd=tmp_path, env={"FNOPS_RUN_DIR": str(tmp_path / "run-state"), **kw})


def test_invoke_finds_the_function_run_serves_by_name(tmp_path, runs):
    make_function(tmp_path, "alpha")
    make_function(tmp_path, "beta")
    a = runs(tmp_path, "alpha", "--port", "0")
    b = runs(tmp_path, "beta", "--port", "0")
    pa, pb = a.port(), b.port()
    assert json.loads(call(tmp_path, "alpha").stdout)["name"] == "alpha"
    assert json.loads(call(tmp_path, "beta").stdout)["name"] == "beta"
    r = call(tmp_path)
    assert r.returncode == 2 and "several functions are served" in r.stderr and f":{pa}/" in r.stderr
    r = call(tmp_path, "gamma")
    assert r.returncode == 1 and "no `fnops run` serves 'gamma' (served now: alpha on" in r.stderr
    r = call(tmp_path, "alpha", "--port", str(pb))
    assert r.returncode == 2 and f"alpha is served on port {pa}, not {pb}" in r.stderr
    b.stop()
    assert json.loads(call(tmp_path).stdout)["name"] == "alpha"  # the only one served
    a.stop()
    r = call(tmp_path, "alpha")
    assert r.returncode == 1 and "no `fnops run` serves 'alpha' (start it: fnops run alpha)" in r.stderr
    assert os.listdir(tmp_path / "run-state") == []  # each run took its entry with it
    # an entry left by a run that was killed (its pid is gone) is not a function served
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (tmp_path / "run-state" / "alpha-1.json").write_text(json.dumps(
        {"name": "alpha", "pid": dead.pid, "port": pa, "url": f"http://127.0.0.1:{pa}/", "state": "serving"}))
    r = call(tmp_path, "alpha")
    assert r.returncode == 1 and "no `fnops run` serves 'alpha'" in r.stderr
    r = call(tmp_path)
    assert r.returncode == 1 and "no function is served by `fnops run`" in r.stderr


def test_a_taken_port_is_an_error_or_replaced_and_printed(tmp_path, runs):
    make_function(tmp_path, "alpha")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        r = fnops("run", "alpha", "--port", str(port), cwd=tmp_path, env={"FNOPS_RUN_DIR": str(tmp_path / "s")})
        assert r.returncode == 1
        assert r.stderr.strip().splitlines()[-1] == (f"fnops: 127.0.0.1:{port} is in use (another program listens "
                                                     "there); pass another --port, or --port 0 for a free one")
    # 8080 taken (by this test, or by whoever holds it now): the default moves to a free port
    holder = socket.socket()
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        holder.bind(("127.0.0.1", 8080))
        holder.listen(1)
    except OSError:
        pass  # someone else's: taken all the same
    try:
        run = runs(tmp_path, "alpha")
        moved = int(run.wait_for(r"^port 8080 is in use \(another program listens there\); using (\d+) instead").group(1))
        assert run.port() == moved != 8080
        assert json.loads(call(tmp_path, "alpha").stdout)["name"] == "alpha"  # found there, not on 8080
    finally:
        holder.close()


def test_a_server_that_dies_is_reported_and_no_reload_exits_1(tmp_path, runs):
    make_function(tmp_path, "alpha")
    run = runs(tmp_path, "alpha", "--port", "0", "--no-reload")
    run.port()
    r = call(tmp_path, "alpha", "--data", "die", "--content-type", "text/plain")
    assert r.returncode == 1
    assert run.proc.wait(20) == 1
    assert "alpha stopped: the server exited (code 7)" in run.text
    assert os.listdir(tmp_path / "run-state") == []


def test_a_server_that_dies_waits_for_the_next_save_and_says_so(tmp_path, runs):
    fn = make_function(tmp_path, "alpha")
    run = runs(tmp_path, "alpha", "--port", "0")
    port = run.port()
    call(tmp_path, "alpha", "--data", "die", "--content-type", "text/plain")
    run.wait_for(r"^alpha stopped: the server exited \(code 7\)")
    run.wait_for(r"^waiting for a change to functions/alpha to restart it")
    r = call(tmp_path, "alpha")
    assert r.returncode == 1 and "alpha is not running: the server exited (code 7)" in r.stderr
    # a client that does not ask fnops is told too, rather than left waiting
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5)
    assert e.value.code == 503 and "alpha is not running" in json.loads(e.value.read())["error"]
    (fn / "handler.py").write_text(ECHO.replace('"name": os.environ', '"again": True, "name": os.environ'))
    run.wait_for(r"^reloaded alpha in")
    assert json.loads(call(tmp_path, "alpha").stdout)["again"] is True


@pytest.mark.parametrize("listed", [True, False])
def test_a_missing_package_is_one_line_naming_it_and_the_install_command(tmp_path, listed):
    make_function(tmp_path, "alpha", handler="import fnops_no_such_pkg.client\n\n\ndef handle(e, c):\n    return 1\n",
                  yaml=f"runtime: {OTHER}\n", requirements="fnops-no-such-pkg==1.0\n" if listed else "# none\n")
    r = fnops("run", "alpha", "--no-reload", cwd=tmp_path, env={"FNOPS_RUN_DIR": str(tmp_path / "s")})
    assert r.returncode == 1
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 2 and "Traceback" not in r.stderr, r.stderr
    here = f"{sys.version_info.major}.{sys.version_info.minor}"
    with open(shutil.which("fnops")) as f:
        python = f.readline()[2:].strip()  # the interpreter of the console script: the one fnops runs in
    assert lines[0].startswith(f"warning: functions/alpha: runtime {OTHER}, but this Python is {here} ({python})")
    install = f"{python} -m pip install -r functions/alpha/requirements.txt"
    assert lines[1].startswith("alpha did not start: functions/alpha/handler.py:1: imports 'fnops_no_such_pkg', which "
                               f"is not installed in the Python fnops runs ({python}); ")
    if listed:
        assert lines[1].endswith(f"it is in functions/alpha/requirements.txt: install the function's requirements into "
                                 f"this Python with `{install}`")
    else:
        assert lines[1].endswith(f"add the package that provides it to functions/alpha/requirements.txt, then "
                                 f"`{install}`")


VERSIONED = '''import time
time.sleep({delay})  # a slow import: the old server must keep answering meanwhile


def handle(event, context):
    return {{"version": {version}}}
'''


def test_reload_never_refuses_a_request_and_says_reloaded_once_the_new_one_answers(tmp_path, runs):
    fn = make_function(tmp_path, "alpha", handler=VERSIONED.format(delay=0, version=1))
    run = runs(tmp_path, "alpha", "--port", "0")
    port = run.port()
    seen, failures, done = [], [], threading.Event()

    def hammer():
        while not done.is_set():
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as r:
                    seen.append(json.loads(r.read())["version"])
            except Exception as e:  # noqa: BLE001 - every kind of failure is the finding
                failures.append(repr(e))

    threads = [threading.Thread(target=hammer) for _ in range(3)]
    for t in threads:
        t.start()
    try:
        for version in (2, 3, 4):
            (fn / "handler.py").write_text(VERSIONED.format(delay=0.4, version=version))
            run.wait_for(r"^reloaded alpha in [\d.]+ s$", count=version - 1)
            # "reloaded" comes only once the new server answers, and the old one has gone
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as r:
                assert json.loads(r.read())["version"] == version
        (fn / "handler.py").write_text("def handle(:\n")
        run.wait_for(r"^reload failed, still serving the previous version: functions/alpha/handler\.py:1:\d+: "
                     r"SyntaxError: ")
        time.sleep(0.5)
    finally:
        done.set()
        for t in threads:
            t.join(30)
    assert failures == [] and len(seen) > 20
    assert seen[-1] == 4 and sorted(set(seen)) == [1, 2, 3, 4]
    run.wait_for(r"^GET / 200 [\d.]+ms$", count=len(seen), timeout=10)  # a log line per request (relayed late)


def test_variables_for_one_run_and_the_overlay_flag(tmp_path, runs):
    handler = ('import os\n\n\ndef handle(e, c):\n    return {k: os.environ.get(k) for k in "ABCD"}\n')
    make_function(tmp_path, "alpha", handler=handler, yaml=f"runtime: {SAME}\nenv: {{A: yaml, B: yaml}}\n"
                                                            "environments:\n  dev: {env: {B: dev}}\n")
    (tmp_path / "vars.env").write_text('# for this run\nexport C="line\\nnext"\n\nB=file\nD=\'single $x\'\n')
    run = runs(tmp_path, "alpha", "--env", "dev", "-e", "B=flag", "--env-file", "vars.env", "--port", "0")
    run.wait_for("^serving alpha \\[dev\\]")
    assert json.loads(call(tmp_path, "alpha").stdout) == {"A": "yaml", "B": "flag", "C": "line\nnext",
                                                          "D": "single $x"}
    s = {"FNOPS_RUN_DIR": str(tmp_path / "s")}
    r = fnops("run", "alpha", "--env", "FOO=bar", cwd=tmp_path, env=s)
    assert r.returncode == 2 and "for a variable use -e FOO=bar or --env-file FILE" in r.stderr
    r = fnops("run", "alpha", "--env", "prd", cwd=tmp_path, env=s)
    assert r.returncode == 2 and r.stderr.strip() == ("fnops: --env prd: functions/alpha/function.yaml has no "
                                                      "environment 'prd'; it declares dev")
    r = fnops("run", "alpha", "-e", "PORT=1", cwd=tmp_path, env=s)
    assert r.returncode == 2 and "PORT is set by fnops run itself" in r.stderr
    r = fnops("run", "alpha", "--env-file", "missing.env", cwd=tmp_path, env=s)
    assert r.returncode == 2 and r.stderr.strip() == "fnops: --env-file missing.env: no such file"
    (tmp_path / "bad.env").write_text("A=1\nnot a variable\n")
    r = fnops("run", "alpha", "--env-file", "bad.env", cwd=tmp_path, env=s)
    assert r.returncode == 2 and r.stderr.strip().startswith("fnops: bad.env:2: 'not a variable' is not NAME=VALUE")


def test_invoke_sends_files_headers_query_path_and_method(tmp_path, runs):
    make_function(tmp_path, "alpha")
    runs(tmp_path, "alpha", "--port", "0").port()
    r = call(tmp_path, "alpha", "--data", "@missing.json")
    assert r.returncode == 2 and r.stderr.strip() == "fnops: --data @missing.json: no such file"
    blob = bytes(range(256)) * 3
    (tmp_path / "blob.bin").write_bytes(blob)
    out = json.loads(call(tmp_path, "alpha", "--data", "@blob.bin").stdout)
    assert (out["sha256"], out["size"], out["type"]) == (hashlib.sha256(blob).hexdigest(), 768,
                                                         "application/octet-stream")
    (tmp_path / "doc.json").write_text('{"id": 7}')
    assert json.loads(call(tmp_path, "alpha", "--data", "@doc.json").stdout)["event"] == {"id": 7}
    out = json.loads(call(tmp_path, "alpha", "-X", "put", "--path", "/orders/7?x=1", "--query", "a=b c",
                          "-H", "X-Trace: t1", "--data", "hi", "--content-type", "text/plain").stdout)
    assert out == {"method": "PUT", "path": "/orders/7", "params": {"x": "1", "a": "b c"}, "trace": "t1",
                   "type": "text/plain", "name": "alpha", "event": "hi"}
    r = call(tmp_path, "alpha", "-H", "no colon")
    assert r.returncode == 2 and "-H 'no colon': want 'Name: value'" in r.stderr
    # a CloudEvent reply: its attributes on stderr, its data (only) on stdout
    r = call(tmp_path, "alpha", "--cloudevent", "com.example.order.created", "--id", "ev-1", "--data", '{"id": 7}')
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["event"] == {"id": 7}
    assert "CloudEvent reply:\n  specversion: 1.0\n  type: com.example.reply\n  source: /echo\n" in r.stderr
    assert "  subject: ev-1\n" in r.stderr and "  datacontenttype: application/json\n" in r.stderr
    # structured mode with bytes: data_base64, decoded for the handler
    r = call(tmp_path, "alpha", "--cloudevent", "t", "--structured", "--data", "@blob.bin")
    assert json.loads(r.stdout)["sha256"] == hashlib.sha256(blob).hexdigest()


def test_the_templates_run_and_answer(tmp_path, runs):
    assert fnops("new", "hello", "--runtime", SAME, cwd=tmp_path).returncode == 0
    assert fnops("new", "orders", "--runtime", SAME, "--template", "cloudevents", cwd=tmp_path).returncode == 0
    runs(tmp_path, "hello", "--port", "0").port()
    runs(tmp_path, "orders", "--port", "0").port()
    assert json.loads(call(tmp_path, "hello", "--query", "name=ada").stdout) == {"message": "hello, ada"}
    assert json.loads(call(tmp_path, "hello", "--data", '{"name": "bob"}').stdout) == {"message": "hello, bob"}
    r = call(tmp_path, "hello", "--data", '{"name": 7}')
    assert r.returncode == 1 and json.loads(r.stdout) == {"error": "name must be a string"}
    r = call(tmp_path, "orders", "--cloudevent", "com.example.order.created", "--id", "e-9", "--data", '{"id": 7}')
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == {"order": 7, "acknowledges": "e-9"}
    assert "  type: com.example.order.acknowledged\n  source: /functions/orders\n" in r.stderr
    assert "  subject: 7\n" in r.stderr
    r = call(tmp_path, "orders", "--data", "{}")
    assert r.returncode == 1 and "send a CloudEvent" in r.stdout
