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
                            cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=log)
    try:
        _wait(port, proc, tmp_path / "run.log")
        yield tmp_path, fn, port, proc
    finally:
        stop_process(proc)
        log.close()
    with pytest.raises(OSError):  # the function server went with `fnops run`
        urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1)


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
                            cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=log, env={**os.environ, **SECRETS})
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
            "FNOPS_GRACEFUL_SECONDS", "PYTHONUNBUFFERED"}
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
