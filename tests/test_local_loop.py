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
