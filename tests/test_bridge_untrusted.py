"""Untrusted input, round 2 (issue 17), each finding tried as an attacker would, against
`fnops bridge serve` as a process with the Slack and GitHub doubles and a bare GitOps repo:
forged origins, slow connections, the shared HMAC secret on a door with its own token,
plain mentions and bare URLs in Slack text, a DSN password in the config, an unreachable
outbox."""

from __future__ import annotations

import hashlib
import json
import os
import resource
import select
import socket
import time
import urllib.request

import pytest
import yaml

import argocd_template
from bridge_harness import HMAC_SECRET, TOKEN
from conftest import ROOT, fnops
from gitrepo import git

ARGOCD_TOKEN = "argocd-only-" + "a" * 20
SECRET_PW = "pw-" + "s3cr3t" * 4


def argocd(b, phase="Succeeded", health="Degraded", fn="checkout", env="dev", *, app=None, app_namespace=None,
           destination=None, message=""):
    a = argocd_template.application("operation-finished", function=fn, env=env, revision=b.revision, phase=phase,
                                    health=health, message=message)
    if app is not None:
        a["metadata"]["name"] = app
    if app_namespace is not None:
        a["metadata"]["namespace"] = app_namespace
    if destination is not None:
        a["spec"]["destination"]["namespace"] = destination
    return json.loads(argocd_template.render(a))


def alert(name="FnopsErrorBudgetFastBurn", namespace="functions-dev", fn="checkout", env="dev", status="firing"):
    labels = {"alertname": name, "fnops_function": fn, "fnops_environment": env, "severity": "critical"}
    if namespace is not None:
        labels["namespace"] = namespace
    return {"version": "4", "status": status, "groupKey": f"{{}}:{{alertname=\"{name}\"}}",
            "alerts": [{"status": status, "labels": labels, "annotations": {"summary": "forged"},
                        "startsAt": "2026-11-22T10:00:00Z", "fingerprint": hashlib.sha256(
                            json.dumps(labels, sort_keys=True).encode()).hexdigest()[:16]}]}


def rollbacks(b) -> int:
    return sum(s.startswith("fnops: roll back") for s in git(b.origin, "log", "--format=%s", "main").splitlines())


def events_stored(b) -> float:
    return next(float(line.split()[1]) for line in b.metrics().splitlines() if line.startswith("fnops_bridge_events "))


# -- MEDIUM: a forged SLO alert, or another Application's event, rolls a function back ----------------------


def test_an_slo_alert_from_another_namespace_rolls_nothing_back(make_bridge):
    b = make_bridge()  # the default config
    forged = [alert(namespace="team-x"), alert(name="FnopsLatencyBudgetFastBurn", namespace=None),
              alert(namespace="functions-prod")]  # checkout's prod namespace is not its dev one
    for body in forged:
        code, out = b.post("/v1/alertmanager", body)
        assert code == 200 and "ignored" in out, out
    log = b.logs()
    assert "alert FnopsErrorBudgetFastBurn for checkout in dev comes from namespace team-x, not functions-dev" in log
    assert "alert FnopsLatencyBudgetFastBurn for checkout in dev carries no namespace label" in log
    assert "comes from namespace functions-prod, not functions-dev" in log
    assert TOKEN not in log and HMAC_SECRET not in log
    assert 'fnops_bridge_events_ignored_total{source="alertmanager"} 3.0' in b.metrics()
    # The same alert from checkout's own namespace is acted on: what was refused would have rolled back.
    assert b.post("/v1/alertmanager", alert())[0] == 202
    b.wait(lambda: rollbacks(b) == 1 and b.pending() == 0, what="the genuine alert's rollback")
    assert events_stored(b) == 2.0  # the genuine alert and its rollback's report; nothing of the forged ones
    assert all(line["kind"] != "alert-firing" or "team-x" not in line["detail"] for line in b.audit_lines())
    assert len(b.slack.top_level()) == 1


def test_an_alert_group_keeps_only_the_alerts_from_the_functions_namespace(make_bridge):
    b = make_bridge()
    body = alert(name="FnopsErrorBudgetFastBurn", namespace="team-x")
    body["alerts"] += alert(name="HighCPU")["alerts"]  # the genuine one is not an SLO alert
    assert b.post("/v1/alertmanager", body)[0] == 202
    b.wait(lambda: any(line["kind"] == "rollback-skipped" for line in b.audit_lines()), what="the rollback report")
    (fired,) = [line for line in b.audit_lines() if line["kind"] == "alert-firing"]
    assert fired["detail"] == "SLO alert firing: HighCPU"  # the forged SLO alert never reached the event
    assert rollbacks(b) == 0


@pytest.mark.parametrize("origin", [
    {"app": "evil-app"},  # another team's Application carrying checkout's labels
    {"app_namespace": "team-x"},  # an Application named checkout-dev, but not the ApplicationSet's (apps in any namespace)
    {"destination": "team-x"},  # checkout-dev's name, deploying somewhere else
], ids=["other-app", "other-app-namespace", "other-destination"])
def test_an_argocd_event_from_another_application_is_ignored(make_bridge, origin):
    b = make_bridge()
    code, out = b.post("/v1/argocd", argocd(b, message="<!channel> rolled back by a stranger", **origin))
    assert code == 200 and "checkout in dev" in out["ignored"], out
    assert "ignored: Argo CD event for checkout in dev" in b.logs()
    # The genuine degraded event afterwards: its outbox drains, so the forged one had its chance.
    assert b.post("/v1/argocd", argocd(b))[0] == 202
    b.wait(lambda: rollbacks(b) == 1 and b.pending() == 0, what="the genuine event's rollback")
    assert events_stored(b) == 2.0  # degraded + rolled-back
    assert [s["state"] for s in b.gh.statuses] == ["failure", "failure"]
    assert not any("stranger" in json.dumps(m) for m in b.slack.messages.values())


def test_the_origin_follows_a_configured_applicationset(make_bridge):
    b = make_bridge(extra={"argocd": {"application": "{environment}-{function}", "applicationNamespace": "apps",
                                      "namespace": {"dev": "checkout-dev-ns", "prod": "prod"}}})
    assert b.post("/v1/argocd", argocd(b))[0] == 200  # the shipped naming is now someone else's
    assert b.post("/v1/alertmanager", alert())[0] == 200
    assert b.post("/v1/argocd", argocd(b, "Running", "Progressing", app="dev-checkout", app_namespace="apps",
                                       destination="checkout-dev-ns"))[0] == 202
    assert b.post("/v1/alertmanager", alert(name="HighCPU", namespace="checkout-dev-ns"))[0] == 202
    b.wait(lambda: b.pending() == 0, what="the accepted events")
    assert events_stored(b) == 3.0  # syncing, the alert, and its rollback-skipped report


def test_the_default_origin_is_what_the_shipped_applicationset_names():
    from fnops.bridge.origin import DEFAULT

    with open(os.path.join(ROOT, "argocd-cmp", "applicationset.yaml")) as f:
        appset = yaml.safe_load(f)
    template = appset["spec"]["template"]
    (matrix,) = appset["spec"]["generators"]
    elements = next(g["list"]["elements"] for g in matrix["matrix"]["generators"] if "list" in g)
    assert DEFAULT.application_namespace == appset["metadata"]["namespace"]
    for el in elements:
        values = {"index .path.segments 1": "checkout", ".env": el["env"],
                  ".namespace": el["namespace"]}

        def render(text):
            for k, v in values.items():
                text = text.replace("{{" + k + "}}", v)
            return text

        assert DEFAULT.application_of("checkout", el["env"]) == render(template["metadata"]["name"])
        assert DEFAULT.namespace_of("checkout", el["env"]) == render(template["spec"]["destination"]["namespace"])


def test_check_config_refuses_origin_templates_it_cannot_fill(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("auth: {bearerTokenEnv: T}\ngitops: {repo: https://github.com/acme/functions.git}\n"
                 "argocd: {application: '{fn}-{env}', applicationNamespace: Argo_CD, namespace: [a]}\n")
    r = fnops("bridge", "check-config", str(p), env={"T": "x"})
    assert r.returncode == 2, r.stderr
    assert "argocd.application: '{fn}' is not one of {function}, {environment}" in r.stderr
    assert "argocd.applicationNamespace: must be a namespace name" in r.stderr
    assert "argocd.namespace: expected a template such as functions-{environment}" in r.stderr


# -- LOW: the shared HMAC secret opens a door that has its own token ------------------------------------------


def test_a_door_with_its_own_token_accepts_only_that_token(make_bridge):
    b = make_bridge(extra={"auth": {"argocdTokenEnv": "ARGOCD_TOKEN"}}, env={"ARGOCD_TOKEN": ARGOCD_TOKEN})
    body = argocd(b, "Running", "Progressing")
    assert b.post("/v1/argocd", body, token=None, hmac_secret=HMAC_SECRET) == (401, {"error": "unauthorized"})
    assert b.post("/v1/argocd", body, token=TOKEN) == (401, {"error": "unauthorized"})
    assert b.post("/v1/argocd", body, token=TOKEN, hmac_secret=HMAC_SECRET)[0] == 401
    assert "fnops_bridge_events 0.0" in b.metrics()
    assert b.post("/v1/argocd", body, token=ARGOCD_TOKEN)[0] == 202
    # The door without a token of its own still takes the shared credentials, the signature too.
    assert b.post("/v1/alertmanager", alert(name="HighCPU"), token=None, hmac_secret=HMAC_SECRET)[0] == 202


def test_a_request_without_credentials_is_refused_before_its_body(make_bridge):
    b = make_bridge(extra={"auth": {"argocdTokenEnv": "ARGOCD_TOKEN"}}, env={"ARGOCD_TOKEN": ARGOCD_TOKEN})
    for door, extra in (("/v1/argocd", "x-signature: sha256=" + "0" * 64 + "\r\n"), ("/v1/alertmanager", "")):
        with socket.create_connection(("127.0.0.1", b.port), timeout=5) as s:
            s.sendall(f"POST {door} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n{extra}"
                      "content-length: 100000\r\n\r\n{".encode())
            t0 = time.monotonic()
            reply = s.recv(4096)
            assert reply.startswith(b"HTTP/1.1 401") and time.monotonic() - t0 < 2, reply


# -- LOW: plain @here and bare URLs reach Slack text ---------------------------------------------------------


def test_plain_mentions_and_bare_urls_neither_notify_nor_link_in_slack(make_bridge):
    b = make_bridge()
    bait = ("@here @channel @Everyone it broke, fix at https://evil.example/login or www.evil.example "
            "or evil.example (mail admin@evil.example); <!here> too")
    assert b.post("/v1/argocd", argocd(b, "Running", "Progressing", message=bait))[0] == 202
    assert b.post("/v1/argocd", argocd(b, "Failed", "Degraded", message=bait))[0] == 202  # chat.update + a reply
    assert b.post("/v1/alertmanager", alert(name="@here see https://evil.example/alert"))[0] == 202
    b.wait(lambda: b.pending() == 0 and any(line["kind"] == "rolled-back" for line in b.audit_lines()),
           what="every Slack post")
    methods = [e["method"] for e in b.slack.effects]
    assert "chat.update" in methods and methods.count("chat.postMessage") >= 3, methods
    ours = {f"https://github.com/acme/functions/commit/{b.src}", "https://argocd.example.com/applications/checkout-dev"}
    for e in b.slack.effects:
        assert e["mentions"] == set(), e
        assert e["links"] <= ours, e
    shown = json.dumps([m["text"] for m in b.slack.messages.values()], ensure_ascii=False)
    assert "evil" in shown and "here" in shown  # still readable; only not live


# -- LOW: a PostgreSQL password in the DSN's query string passes check-config ---------------------------------


@pytest.mark.parametrize("store,why", [
    (f"postgresql://db.example/fnops?password={SECRET_PW}", "a password parameter"),
    (f"postgresql://db.example/fnops?sslmode=require&sslpassword={SECRET_PW}", "a password parameter"),
    (f"postgres://db.example/fnops?PassWord={SECRET_PW}&application_name=fnops", "a password parameter"),
    (f"postgresql://fnops:{SECRET_PW}@db.example/fnops", "credentials"),
    (f"mysql://fnops:{SECRET_PW}@db.example/fnops?password={SECRET_PW}", "is not supported"),
])
def test_a_password_in_the_store_url_fails_check_config_unprinted(tmp_path, store, why):
    p = tmp_path / "c.yaml"
    p.write_text(yaml.safe_dump({"auth": {"bearerTokenEnv": "T"}, "store": store,
                                 "gitops": {"repo": "https://github.com/acme/functions.git"}}))
    r = fnops("bridge", "check-config", str(p), env={"T": "x"})
    assert r.returncode == 2 and why in r.stderr, r.stderr
    assert SECRET_PW not in r.stdout + r.stderr


def test_a_dsn_from_the_environment_or_with_a_passfile_passes_check_config(tmp_path):
    p = tmp_path / "c.yaml"
    for store, env in (("env:DSN", {"DSN": f"postgresql://fnops:{SECRET_PW}@db.example/fnops?password=x"}),
                       ("postgresql://db.example/fnops?passfile=/etc/fnops/pgpass&sslmode=verify-full", {})):
        p.write_text(yaml.safe_dump({"auth": {"bearerTokenEnv": "T"}, "store": store,
                                     "gitops": {"repo": "https://github.com/acme/functions.git"}}))
        r = fnops("bridge", "check-config", str(p), env={"T": "x", **env})
        assert r.returncode == 0, r.stderr
        assert SECRET_PW not in r.stdout + r.stderr


# -- LOW: `fnops bridge deliveries` hangs when the store is unreachable ---------------------------------------


@pytest.fixture
def black_hole():
    """A port on 127.0.0.1 that completes the TCP handshake and never answers: a database
    behind a stalled proxy or a full accept queue."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(64)
    try:
        yield s.getsockname()[1]
    finally:
        s.close()


@pytest.mark.parametrize("args", [["deliveries", "--state", "failed"], ["retry", "42"]], ids=["deliveries", "retry"])
def test_an_unreachable_outbox_is_one_line_and_exit_1_in_bounded_time(tmp_path, black_hole, args):
    p = tmp_path / "c.yaml"
    p.write_text(yaml.safe_dump({"auth": {"bearerTokenEnv": "T"}, "store": "env:DSN",
                                 "gitops": {"repo": "https://github.com/acme/functions.git"}}))
    dsn = f"postgresql://fnops:{SECRET_PW}@127.0.0.1:{black_hole}/fnops"
    t0 = time.monotonic()
    r = fnops("bridge", args[0], "--config", str(p), *args[1:], env={"T": "x", "DSN": dsn}, timeout=60)
    took = time.monotonic() - t0
    assert r.returncode == 1 and took < 15, (r.returncode, took, r.stderr)
    assert r.stdout == "" and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert r.stderr.startswith("fnops: cannot reach the outbox (postgresql):") and SECRET_PW not in r.stderr


# -- MEDIUM: slow unauthenticated connections freeze the bridge -----------------------------------------------


def _gauge(b, series: str) -> float:
    return next((float(line.rsplit(" ", 1)[1]) for line in b.metrics().splitlines()
                 if line.startswith(series + " ")), -1.0)


def _fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def _timed_get(url: str) -> float:
    t0 = time.monotonic()
    with urllib.request.urlopen(url, timeout=10) as r:
        assert r.status == 200 and r.read() == b"ok\n"
    return time.monotonic() - t0


def _closed_by_peer(sock) -> bool:
    try:
        return sock.recv(65536) == b""
    except (ConnectionResetError, BrokenPipeError):
        return True
    except BlockingIOError:
        return False


def _wait_all_closed(socks, timeout: float) -> list:
    """The sockets the server has not closed after `timeout` seconds."""
    open_ = {s.fileno(): s for s in socks}
    poller = select.poll()
    for fd in open_:
        poller.register(fd, select.POLLIN | select.POLLHUP | select.POLLERR)
    deadline = time.monotonic() + timeout
    while open_ and time.monotonic() < deadline:
        for fd, _ in poller.poll(200):
            s = open_.get(fd)
            if s is not None and _closed_by_peer(s):
                poller.unregister(fd)
                del open_[fd]
    return list(open_.values())


@pytest.fixture
def slow_clients():
    """connect(port, n, first): n sockets to 127.0.0.1 opened at once, as an attacker would
    (non-blocking connects, the kernel retrying any SYN a full listen queue dropped), each
    sending `first` once connected. -> (the sockets, seconds until all were connected).
    Every socket is closed at the end of the test."""
    made: list = []
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 4096 if hard == resource.RLIM_INFINITY else min(4096, hard)
    if soft != resource.RLIM_INFINITY and soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))

    def connect(port: int, n: int, first: bytes, timeout: float = 20) -> tuple[list, float]:
        t0 = time.monotonic()
        pending = {}
        poller = select.poll()
        for _ in range(n):
            s = socket.socket()
            made.append(s)
            s.setblocking(False)
            s.connect_ex(("127.0.0.1", port))
            pending[s.fileno()] = s
            poller.register(s, select.POLLOUT)
        while pending and time.monotonic() - t0 < timeout:
            for fd, _ in poller.poll(100):
                s = pending.pop(fd)
                poller.unregister(fd)
                if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0:
                    try:
                        s.send(first)
                    except OSError:
                        pass  # evicted already
        assert not pending, f"{len(pending)} of {n} connections never completed"
        return made[-n:], time.monotonic() - t0

    yield connect
    for s in made:
        s.close()
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def _drip(socks, data: bytes) -> None:
    for s in socks:
        try:
            s.send(data)
        except OSError:
            pass  # already cut off


@pytest.mark.parametrize("nofile", [None, 1024], ids=["fds-to-spare", "container-1024-fds"])
def test_slowloris_headers_are_cut_off_and_healthz_keeps_answering(make_bridge, slow_clients, nofile):
    # 1024 open files, soft and hard (a container's usual limit): 1,100 never-finished
    # requests used to exhaust it, and then not even /healthz was accepted.
    b = make_bridge(nofile=nofile, extra={"http": {"headerTimeout": "10s"}})
    pid = b.proc.pid
    idle = _fds(pid)
    socks, took = slow_clients(b.port, 1100, b"GET /healthz HTTP/1.1\r\nhost: x\r\n")  # headers never finished
    t0 = time.monotonic()
    # Straight after the flood: at worst SYN retransmits (1 s, then 2 s more) while the kernel
    # settles the flood's own retransmitted handshakes against the listen queue.
    first = _timed_get(b.url + "/healthz")
    assert first < 3.5, first
    b.wait(lambda: _gauge(b, "fnops_bridge_http_connections") == 512, timeout=10, what="the bridge full of slow ones")
    latencies, peak = [], 0
    for _ in range(10):  # while the bridge holds as many slow connections as it takes
        _drip(socks, b"x-slow: 1\r\n")  # a trickle of bytes buys no time
        latencies.append(_timed_get(b.url + "/healthz"))
        peak = max(peak, _fds(pid))
        time.sleep(0.1)
    # Answered at once, bar one probe whose SYN met a full accept queue and was retried (1 s).
    assert sorted(latencies)[-2] < 0.5 and max(latencies) < 3.5, latencies
    assert _gauge(b, "fnops_bridge_http_connections") >= 500  # still full: the probes got in beside them
    assert peak <= idle + 512 + 16, (idle, peak)  # http.maxConnections (512) bounds the sockets the bridge holds
    left = _wait_all_closed(socks, timeout=10 + 6)
    assert not left, f"{len(left)} slow connections still open"
    cut = {r: _gauge(b, f'fnops_bridge_http_connections_cut_total{{reason="{r}"}}') for r in ("header-timeout", "evicted")}
    # The 512 held ones time out; the rest took an older one's place. How many of the rest reach
    # the bridge at all depends on the kernel: with 1024 fds the listen backlog is 128, and the
    # kernel settles part of the flood itself (clean CI runs saw 93 to 589 evictions).
    assert cut["header-timeout"] >= 500 and cut["evicted"] > 0, cut
    if nofile is None:  # a backlog of 2048 queues the whole flood: every connection reaches the guard
        assert cut["header-timeout"] + cut["evicted"] >= 1100 - 2, cut
    assert "slow or surplus HTTP connections" in b.logs()
    assert "out of system resource" not in b.logs()  # accept() never ran out of descriptors
    assert _fds(pid) <= idle + 8
    assert _timed_get(b.url + "/healthz") < 0.5
    print(f"\nslowloris 1100 ({nofile or 'default'} fds): connected in {took:.1f} s; first /healthz "
          f"{first * 1000:.0f} ms, then max {max(latencies) * 1000:.0f} ms over {len(latencies)} probes with 512 "
          f"slow ones held; bridge fds idle {idle}, peak {peak}; all cut {time.monotonic() - t0:.1f} s after; {cut}")


def test_slow_bodies_are_cut_off_and_make_room_for_quick_requests(make_bridge, slow_clients):
    b = make_bridge(extra={"http": {"maxConnections": 64, "bodyTimeout": "3s"}})
    # A signature makes the bridge read the body before it can judge it: the door an
    # unauthenticated sender can still hold open.
    head = (b"POST /v1/argocd HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
            b"x-signature: sha256=" + b"0" * 64 + b"\r\ncontent-length: 100000\r\n\r\n{")
    socks, _ = slow_clients(b.port, 100, head)
    latencies = []
    for _ in range(8):
        _drip(socks, b" ")
        latencies.append(_timed_get(b.url + "/healthz"))
        time.sleep(0.2)
    assert max(latencies) < 0.5, latencies
    assert not _wait_all_closed(socks, timeout=8)
    # The honest sender is served the whole time: an accepted event.
    assert b.post("/v1/argocd", argocd(b, "Running", "Progressing"))[0] == 202
    m = b.metrics()
    assert 'fnops_bridge_http_connections_cut_total{reason="body-timeout"}' in m
    assert not any(line.startswith('fnops_bridge_http_connections_cut_total{reason="body-timeout"} 0.0')
                   for line in m.splitlines())
