"""The python runtime's function server, as a real process answering real HTTP."""

import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

import fnops.delivery.runtimes as runtimes
from containers import free_port

SERVER = os.path.join(os.path.dirname(runtimes.__file__), "python", "server.py")
HANDLER = '''
import time
def handle(event, context):
    if isinstance(event, dict) and event.get("boom"):
        raise RuntimeError("kaboom")
    if isinstance(event, dict) and event.get("sleep"):
        open("started", "w").close()  # the test signals only once the request is in flight
        time.sleep(event["sleep"])
        return {"slept": event["sleep"]}
    if event == "text please":
        return "plain text"
    if event is None and context["cloudevent"] is None:
        return None
    return {"event": event, "ce": context["cloudevent"], "path": context["path"]}
'''


@pytest.fixture
def server(tmp_path):
    (tmp_path / "handler.py").write_text(HANDLER)
    port = free_port()
    env = {**os.environ, "PORT": str(port), "HOST": "127.0.0.1", "FNOPS_HANDLER": "handler:handle",
           "FNOPS_GRACEFUL_SECONDS": "10"}
    proc = subprocess.Popen([sys.executable, SERVER], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            c.request("GET", "/healthz")
            if c.getresponse().status == 200:
                c.close()
                break
        except OSError:
            time.sleep(0.05)
    else:
        proc.kill()
        raise AssertionError(proc.communicate()[1])
    yield proc, port
    if proc.poll() is None:
        proc.kill()
    proc.communicate()


def call(port, body=b"", headers=None, method="POST", path="/"):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request(method, path, body=body, headers=headers or {})
    r = c.getresponse()
    out = (r.status, r.getheader("content-type"), r.read())
    c.close()
    return out


def test_json_in_json_out(server):
    _, port = server
    status, ctype, body = call(port, b'{"name": "ada"}', {"content-type": "application/json"}, path="/x")
    assert status == 200 and ctype == "application/json"
    assert json.loads(body) == {"event": {"name": "ada"}, "ce": None, "path": "/x"}


def test_text_and_empty_replies(server):
    _, port = server
    assert call(port, b"text please", {"content-type": "text/plain"})[:3] == (200, "text/plain; charset=utf-8", b"plain text")
    assert call(port, b"")[0] == 204


def test_binary_mode_cloudevent_like_pingsource_sends(server):
    _, port = server
    headers = {"ce-specversion": "1.0", "ce-id": "42", "ce-source": "/apis/v1/namespaces/x/pingsources/report",
               "ce-type": "dev.knative.sources.ping", "content-type": "application/json"}
    status, _, body = call(port, b'{"job": "report"}', headers)
    out = json.loads(body)
    assert status == 200 and out["event"] == {"job": "report"}
    assert out["ce"]["type"] == "dev.knative.sources.ping" and out["ce"]["id"] == "42"


def test_structured_mode_cloudevent_with_base64_data(server):
    _, port = server
    ce = {"specversion": "1.0", "id": "7", "source": "kafka", "type": "dev.knative.kafka.event",
          "datacontenttype": "text/plain", "data_base64": "aGVsbG8="}
    status, _, body = call(port, json.dumps(ce).encode(), {"content-type": "application/cloudevents+json"})
    out = json.loads(body)
    assert status == 200 and out["event"] == "hello" and out["ce"]["source"] == "kafka"


def test_malformed_cloudevent_is_400(server):
    _, port = server
    status, _, body = call(port, b"{}", {"ce-specversion": "1.0", "ce-id": "1"})
    assert status == 400 and b"ce-source" in body


def test_handler_error_is_500_and_the_traceback_is_logged_not_returned(server):
    proc, port = server
    status, _, body = call(port, b'{"boom": true}', {"content-type": "application/json"})
    assert status == 500 and body == b'{"error":"internal error"}'
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=15)
    assert "Traceback" in err and "RuntimeError: kaboom" in err


def test_sigterm_lets_in_flight_requests_finish(server, tmp_path):
    proc, port = server
    result = {}

    def slow():
        result["r"] = call(port, b'{"sleep": 1.0}', {"content-type": "application/json"})

    t = threading.Thread(target=slow)
    t.start()
    deadline = time.monotonic() + 10
    while not (tmp_path / "started").exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert (tmp_path / "started").exists(), "the slow request never reached the handler"
    proc.send_signal(signal.SIGTERM)
    t.join(15)
    assert result["r"][0] == 200 and json.loads(result["r"][2]) == {"slept": 1.0}
    # uvicorn re-raises the caught SIGTERM once it has drained, so the exit is "by SIGTERM".
    assert proc.wait(15) in (0, -signal.SIGTERM)


# --- the handler contract: status, headers, context, CloudEvent replies --------------------

CONTRACT = '''
import base64

def handle(event, context):
    what = context["params"].get("what")
    if what == "context":
        return {k: context[k] for k in ("method", "path", "query", "params", "cloudevent")} | {
            "host": context["headers"].get("host"), "x": context["headers"].get("x-trace")}
    if what == "created":
        return {"id": 7}, 201, {"location": "/orders/7", "x-trace": "abc"}
    if what == "accepted":
        return None, 202
    if what == "html":
        return "<p>hi</p>", 200, {"content-type": "text/html"}
    if what == "reply":
        return {"specversion": "1.0", "type": "com.example.greeted", "source": "/greeter",
                "subject": "caf\\u00e9 \\"50%\\"", "priority": 3, "data": {"got": event}}
    if what == "reply-bytes":
        return {"specversion": "1.0", "type": "t", "source": "s", "id": "fixed",
                "data_base64": base64.b64encode(b"\\x00\\xff").decode()}, 200
    if what == "reply-text":
        return {"specversion": "1.0", "type": "t", "source": "s", "data": "plain"}
    if what == "bad-reply":
        return {"specversion": "1.0", "source": "s"}
    if what == "bad-header":
        return "x", 200, {"x-evil": "a\\r\\nset-cookie: y"}
    if what == "bad-status":
        return "x", 42
    return {"event": event}
'''


@pytest.fixture
def contract(tmp_path):
    (tmp_path / "handler.py").write_text(CONTRACT)
    port = free_port()
    env = {**os.environ, "PORT": str(port), "HOST": "127.0.0.1", "FNOPS_HANDLER": "handler:handle",
           "FNOPS_GRACEFUL_SECONDS": "1", "FNOPS_ACCESS_LOG": "1"}
    proc = subprocess.Popen([sys.executable, SERVER], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        _healthy(port, proc)
        yield proc, port
    finally:
        if proc.poll() is None:
            proc.terminate()
        try:
            proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()


def _healthy(port, proc, timeout=15):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()[1]
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            c.request("GET", "/healthz")
            if c.getresponse().status == 200:
                c.close()
                return
        except OSError:
            time.sleep(0.05)
    raise AssertionError("the server did not start")


def full(port, path, body=b"", headers=None, method="POST"):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request(method, path, body=body, headers=headers or {})
    r = c.getresponse()
    out = (r.status, {k.lower(): v for k, v in r.getheaders()}, r.read())
    c.close()
    return out


def test_context_holds_method_path_query_params_and_headers(contract):
    _, port = contract
    status, _, body = full(port, "/orders/7?what=context&a=1&a=2", method="PUT", headers={"X-Trace": "t1"})
    assert status == 200
    assert json.loads(body) == {"method": "PUT", "path": "/orders/7", "query": "what=context&a=1&a=2",
                                "params": {"what": "context", "a": "2"}, "cloudevent": None,
                                "host": f"127.0.0.1:{port}", "x": "t1"}


def test_a_handler_sets_status_and_headers_and_none_is_204(contract):
    _, port = contract
    status, headers, body = full(port, "/?what=created")
    assert (status, json.loads(body)) == (201, {"id": 7})
    assert headers["location"] == "/orders/7" and headers["x-trace"] == "abc"
    assert headers["content-type"] == "application/json"
    assert full(port, "/?what=accepted")[:3:2] == (202, b"")
    status, headers, body = full(port, "/?what=html")
    assert (status, headers["content-type"], body) == (200, "text/html", b"<p>hi</p>")
    assert full(port, "/", method="GET")[0] == 200  # {"event": None}: a dict, not None
    for bad in ("bad-header", "bad-status"):
        status, headers, body = full(port, f"/?what={bad}")
        assert status == 500 and body == b'{"error":"internal error"}' and "set-cookie" not in headers


def test_a_cloudevent_reply_goes_out_in_binary_mode(contract):
    _, port = contract
    ce = {"ce-specversion": "1.0", "ce-id": "1", "ce-source": "/s", "ce-type": "com.example.order.created",
          "content-type": "application/json"}
    status, headers, body = full(port, "/?what=reply", b'{"id": 7}', ce)
    assert status == 200 and json.loads(body) == {"got": {"id": 7}}
    assert headers["ce-specversion"] == "1.0" and headers["ce-type"] == "com.example.greeted"
    assert headers["ce-source"] == "/greeter" and headers["ce-priority"] == "3"
    assert len(headers["ce-id"]) == 36 and headers["content-type"] == "application/json"
    # what a header cannot carry is percent-encoded (CloudEvents HTTP binding), and reads back
    assert headers["ce-subject"] == "caf%C3%A9%20%2250%25%22"
    from urllib.parse import unquote

    assert unquote(headers["ce-subject"]) == 'café "50%"'
    status, headers, body = full(port, "/?what=reply-bytes")
    assert (status, headers["ce-id"], headers["content-type"], body) == (200, "fixed", "application/octet-stream",
                                                                         b"\x00\xff")
    status, headers, body = full(port, "/?what=reply-text")
    assert (headers["content-type"], body) == ("text/plain; charset=utf-8", b"plain")


def test_an_invalid_cloudevent_reply_is_a_logged_500(contract):
    proc, port = contract
    status, headers, body = full(port, "/?what=bad-reply")
    assert status == 500 and not any(k.startswith("ce-") for k in headers)
    proc.terminate()
    _, err = proc.communicate(timeout=15)
    assert "CloudEvent reply needs type" in err


def test_binary_cloudevent_attributes_are_percent_decoded(contract):
    _, port = contract
    headers = {"ce-specversion": "1.0", "ce-id": "1", "ce-source": "/s", "ce-type": "t",
               "ce-subject": "caf%C3%A9%20%2250%25%22"}
    status, _, body = full(port, "/?what=context", headers=headers)
    assert status == 200 and json.loads(body)["cloudevent"]["subject"] == 'café "50%"'


def test_access_log_has_a_line_per_request(contract):
    proc, port = contract
    full(port, "/x?what=created")
    full(port, "/", headers={"ce-specversion": "1.0", "ce-id": "1", "ce-source": "/s", "ce-type": "com.example.t"})
    proc.terminate()
    _, err = proc.communicate(timeout=15)
    lines = [line for line in err.splitlines() if "fnops.access" in line]
    assert len(lines) == 2, err
    assert re.search(r"POST /x\?what=created 201 [\d.]+ms$", lines[0]), lines
    assert lines[1].endswith("ce-type=com.example.t"), lines


# --- the handshake fnops run uses: a socket it holds, and "ready" or why not ---------------

def _handshake(tmp_path, handler_text):
    (tmp_path / "handler.py").write_text(handler_text)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    r, w = os.pipe()
    env = {**os.environ, "PORT": str(listener.getsockname()[1]), "HOST": "127.0.0.1",
           "FNOPS_HANDLER": "handler:handle", "FNOPS_GRACEFUL_SECONDS": "1",
           "FNOPS_LISTEN_FD": str(listener.fileno()), "FNOPS_READY_FD": str(w)}
    proc = subprocess.Popen([sys.executable, SERVER], cwd=tmp_path, env=env, pass_fds=(listener.fileno(), w),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        said = f.readline().decode()
    return listener, proc, said


def test_the_server_serves_the_socket_it_is_handed_and_says_ready(tmp_path):
    listener, proc, said = _handshake(tmp_path, "def handle(e, c):\n    return {'ok': True}\n")
    try:
        assert said == "ready\n"
        status, _, body = full(listener.getsockname()[1], "/")
        assert (status, json.loads(body)) == (200, {"ok": True})
    finally:
        proc.terminate()
        proc.communicate(timeout=15)
        listener.close()


@pytest.mark.parametrize("text,expect", [
    ("import no_such_module_xyz.sub\n", {"type": "ModuleNotFoundError", "module": "no_such_module_xyz", "line": 1}),
    ("def handle(:\n", {"type": "SyntaxError", "line": 1}),
    ("x = 1\n", {"type": "LookupError"}),
    ("\n\nraise RuntimeError('boom')\n", {"type": "RuntimeError", "message": "boom", "line": 3}),
])
def test_a_handler_that_does_not_load_says_why_on_the_ready_pipe(tmp_path, text, expect):
    listener, proc, said = _handshake(tmp_path, text)
    try:
        assert proc.wait(15) != 0
        error = json.loads(said)["error"]
        assert {k: error.get(k) for k in expect} == expect, error
        if "line" in expect:
            assert error["file"] == str(tmp_path / "handler.py")
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=15)
        listener.close()
