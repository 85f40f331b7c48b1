"""The python runtime's function server, as a real process answering real HTTP."""

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

import fnops.delivery.runtimes as runtimes

SERVER = os.path.join(os.path.dirname(runtimes.__file__), "python", "server.py")
HANDLER = '''
import time
def handle(event, context):
    if isinstance(event, dict) and event.get("boom"):
        raise RuntimeError("kaboom")
    if isinstance(event, dict) and event.get("sleep"):
        time.sleep(event["sleep"])
        return {"slept": event["sleep"]}
    if event == "text please":
        return "plain text"
    if event is None and context["cloudevent"] is None:
        return None
    return {"event": event, "ce": context["cloudevent"], "path": context["path"]}
'''


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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


def test_sigterm_lets_in_flight_requests_finish(server):
    proc, port = server
    result = {}

    def slow():
        result["r"] = call(port, b'{"sleep": 1.0}', {"content-type": "application/json"})

    t = threading.Thread(target=slow)
    t.start()
    time.sleep(0.3)
    proc.send_signal(signal.SIGTERM)
    t.join(15)
    assert result["r"][0] == 200 and json.loads(result["r"][2]) == {"slept": 1.0}
    # uvicorn re-raises the caught SIGTERM once it has drained, so the exit is "by SIGTERM".
    assert proc.wait(15) in (0, -signal.SIGTERM)
