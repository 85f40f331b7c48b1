"""The bridge as a process: HTTP in, outbox, Slack/GitHub doubles and a bare GitOps repo out."""

import json
import time

import pytest
import yaml

import argocd_template
from bridge_harness import HMAC_SECRET, NEW_IMAGE, TOKEN, Bridge
from gitrepo import git, show


@pytest.fixture
def bridge(tmp_path):
    b = Bridge(tmp_path)
    b.start()
    yield b
    b.stop()
    assert b.slack.violations == [] and b.gh.violations == []


def argocd(b, phase, health, fn="checkout", env="dev", revision=None, **kw):
    app = argocd_template.application("operation-finished", function=fn, env=env, revision=revision or b.revision,
                                      phase=phase, health=health, **kw)
    return json.loads(argocd_template.render(app))


def test_health_ready_and_metrics(bridge):
    import urllib.request

    for path in ("/healthz", "/readyz"):
        with urllib.request.urlopen(bridge.url + path) as r:
            assert r.status == 200
    assert "fnops_bridge_events 0" in bridge.metrics()


@pytest.mark.parametrize("kw,status", [
    ({"token": None}, 401),
    ({"token": "wrong"}, 401),
    ({"token": None, "headers": {"x-signature": "sha256=" + "0" * 64}}, 401),
    ({"token": None, "hmac_secret": "not-the-secret"}, 401),
])
def test_unauthenticated_posts_get_401_without_detail_and_store_nothing(bridge, kw, status):
    code, body = bridge.post("/v1/argocd", argocd(bridge, "Running", "Progressing"), **kw)
    assert (code, body) == (status, {"error": "unauthorized"})
    assert "fnops_bridge_events 0" in bridge.metrics()


def test_hmac_signature_is_accepted(bridge):
    code, body = bridge.post("/v1/argocd", argocd(bridge, "Running", "Progressing"), token=None,
                             hmac_secret=HMAC_SECRET)
    assert code == 202 and body["accepted"]


def test_bad_payloads(bridge):
    assert bridge.post("/v1/argocd", None, raw=b"{not json")[0] == 400
    code, body = bridge.post("/v1/argocd", {"labels": {}})
    assert code == 400 and body == {"error": "missing required field 'app'"}
    code, body = bridge.post("/v1/alertmanager", {"version": "4", "status": "firing", "alerts": [{"labels": {}}]})
    assert code == 400 and body == {"error": "missing required field 'alerts[0].status'"}
    code, body = bridge.post("/v1/argocd", {"app": "guestbook", "labels": {"team": "x"}})
    assert code == 422 and "no fnops.dev/function" in body["error"]
    # An oversized body is refused from its declared length, before it is read.
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", bridge.port, timeout=10)
    conn.putrequest("POST", "/v1/argocd")
    for k, v in (("content-type", "application/json"), ("authorization", f"Bearer {TOKEN}"),
                 ("content-length", str(2 << 20))):
        conn.putheader(k, v)
    conn.endheaders()
    r = conn.getresponse()
    assert r.status == 413 and b"larger than" in r.read()
    conn.close()
    # …and one that arrives in chunks without a length is cut off at the cap.
    conn = http.client.HTTPConnection("127.0.0.1", bridge.port, timeout=10)
    conn.putrequest("POST", "/v1/argocd")
    for k, v in (("content-type", "application/json"), ("authorization", f"Bearer {TOKEN}"),
                 ("transfer-encoding", "chunked")):
        conn.putheader(k, v)
    conn.endheaders()
    try:
        for _ in range(40):
            chunk = b"x" * 65536
            conn.send(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        conn.send(b"0\r\n\r\n")
    except OSError:
        pass  # the server may answer and close before everything is sent
    r = conn.getresponse()
    assert r.status == 413
    conn.close()
    assert "fnops_bridge_events 0" in bridge.metrics()


def test_replayed_event_is_folded(bridge):
    payload = argocd(bridge, "Running", "Progressing")
    assert bridge.post("/v1/argocd", payload)[0] == 202
    code, body = bridge.post("/v1/argocd", payload)
    assert code == 200 and body["duplicate"] is True
    assert "fnops_bridge_events 1" in bridge.metrics()


def test_a_release_moves_through_slack_github_and_the_audit_log(bridge):
    assert bridge.post("/v1/argocd", argocd(bridge, "Running", "Progressing"))[0] == 202
    assert bridge.post("/v1/argocd", argocd(bridge, "Succeeded", "Healthy"))[0] == 202
    bridge.wait(lambda: bridge.pending() == 0, what="outbox to drain")
    # Slack: one message for the release, updated in place, the later event in its thread.
    top = bridge.slack.top_level()
    assert len(top) == 1
    (channel, ts), msg = next(iter(top.items()))
    assert channel == "C0TEAM"  # notify.slack of the checkout function
    assert "checkout → dev: deployed" in msg["text"] or "deployed" in msg["text"]
    assert msg["history"] and "syncing" in msg["history"][0]
    assert any(bridge.src[:7] in f["text"] for b in msg["blocks"] if b["type"] == "section" for f in b["fields"])
    assert len(bridge.slack.replies(ts)) == 1
    # GitHub: statuses on the *source* commit, a Deployment for it.
    states = [(s["sha"], s["context"], s["state"]) for s in bridge.gh.statuses]
    assert states == [(bridge.src, "fnops/dev/checkout", "pending"), (bridge.src, "fnops/dev/checkout", "success")]
    assert all(len(s["description"]) <= 140 for s in bridge.gh.statuses)
    (dep,) = bridge.gh.deployments
    assert dep["request"]["ref"] == bridge.src and dep["request"]["auto_merge"] is False
    assert dep["request"]["required_contexts"] == [] and dep["request"]["environment"] == "dev"
    assert [s["state"] for s in bridge.gh.deployment_statuses] == ["in_progress", "success"]
    # Audit: one JSON line per event on the audit branch; main untouched.
    lines = bridge.audit_lines()
    assert [line["kind"] for line in lines] == ["syncing", "deployed"]
    assert all(line["sourceCommit"] == bridge.src and line["image"] == NEW_IMAGE for line in lines)
    assert git(bridge.origin, "rev-parse", "main") == bridge.revision


def test_degraded_release_with_rollback_auto_is_rolled_back_and_reported(bridge):
    prev = yaml.safe_load(show(bridge.origin, "functions/checkout/releases/dev.yaml"))["previous"]["image"]
    assert bridge.post("/v1/argocd", argocd(bridge, "Succeeded", "Degraded", message='pod "x" crashed\nOOMKilled'))[0] == 202
    bridge.wait(lambda: bridge.pending() == 0 and any(l["kind"] == "rolled-back" for l in bridge.audit_lines()),
                what="rollback to be reported")
    pin = yaml.safe_load(show(bridge.origin, "functions/checkout/releases/dev.yaml"))
    assert pin["image"] == prev and pin["rollbackOf"] == NEW_IMAGE
    msg = git(bridge.origin, "log", "-1", "--format=%B", "main")
    assert msg.startswith("fnops: roll back checkout in dev") and "Fnops-Rollback-Of: " + NEW_IMAGE in msg
    ((_, ts), top), = bridge.slack.top_level().items()
    assert "rolled back" in top["text"]
    assert any("rolled back to" in r["text"] for r in bridge.slack.replies(ts))
    assert [s["state"] for s in bridge.gh.statuses if s["sha"] == bridge.src][-1] == "failure"
    assert "inactive" in [s["state"] for s in bridge.gh.deployment_statuses]
    assert [l["kind"] for l in bridge.audit_lines()] == ["degraded", "rolled-back"]
    logs = bridge.logs()
    assert TOKEN not in logs and "xoxb-bridge" not in logs and "ghp_bridge" not in logs
    assert not any(TOKEN in json.dumps(l) for l in bridge.audit_lines())


def test_rollback_guards_are_reported_not_silent(bridge):
    # Argo CD's own rollback operation degraded: never roll back a rollback.
    assert bridge.post("/v1/argocd", argocd(bridge, "Succeeded", "Degraded", rollback=True))[0] == 202
    bridge.wait(lambda: any(l["kind"] == "rollback-skipped" for l in bridge.audit_lines()), what="guard report")
    skipped = [l for l in bridge.audit_lines() if l["kind"] == "rollback-skipped"]
    assert "not rolling back a rollback" in skipped[0]["detail"]
    assert git(bridge.origin, "rev-parse", "main") == bridge.revision
    ((_, ts), _), = bridge.slack.top_level().items()
    assert any("no rollback" in r["text"] for r in bridge.slack.replies(ts))


def test_slo_alert_within_bake_time_rolls_back(bridge):
    with open(argocd_template.os.path.join(argocd_template.ROOT, "..", "shared", "schemas", "apis",
                                           "alertmanager-webhook-firing.json")) as f:
        payload = json.load(f)
    for a in payload["alerts"]:
        # namespace: what Prometheus Operator's enforcedNamespaceLabel stamps on the rule fnops rendered
        a["labels"].update(fnops_function="checkout", fnops_environment="dev", alertname="FnopsErrorBudgetFastBurn",
                           namespace="functions-dev")
    assert bridge.post("/v1/alertmanager", payload)[0] == 202
    bridge.wait(lambda: any(l["kind"] == "rolled-back" for l in bridge.audit_lines()), what="rollback")
    assert yaml.safe_load(show(bridge.origin, "functions/checkout/releases/dev.yaml"))["rollbackOf"] == NEW_IMAGE


def test_permanent_errors_stop_one_delivery_and_show_in_metrics(tmp_path):
    b = Bridge(tmp_path, slack_channels=("C0DEPLOYS",))  # the team channel does not exist
    b.start()
    try:
        assert b.post("/v1/argocd", argocd(b, "Running", "Progressing"))[0] == 202
        b.wait(lambda: b.pending() == 0, what="outbox to settle")
        m = b.metrics()
        assert 'fnops_bridge_deliveries{sink="slack",state="failed"} 1' in m
        assert 'fnops_bridge_deliveries{sink="github",state="done"} 1' in m
        assert 'fnops_bridge_deliveries{sink="audit",state="done"} 1' in m
        assert "channel_not_found" in b.logs()
    finally:
        b.stop()


def test_429_retry_after_is_honoured(bridge):
    bridge.slack.faults.append((429, {"Retry-After": "1"}, {"ok": False, "error": "ratelimited"}))
    t0 = time.monotonic()
    assert bridge.post("/v1/argocd", argocd(bridge, "Running", "Progressing"))[0] == 202
    bridge.wait(lambda: len(bridge.slack.top_level()) == 1, what="slack message after 429")
    assert time.monotonic() - t0 >= 1.0
    assert len(bridge.slack.top_level()) == 1


def test_kill_9_with_pending_events_delivers_everything_exactly_once(tmp_path):
    b = Bridge(tmp_path)
    b.start()
    try:
        # Slack and GitHub are down while the events arrive: everything stays pending.
        b.slack.faults += [(503, {}, {"ok": False, "error": "service_unavailable"})] * 200
        b.gh.faults += [(502, {}, {"message": "Bad Gateway"})] * 200
        for phase, health in (("Running", "Progressing"), ("Succeeded", "Healthy")):
            assert b.post("/v1/argocd", argocd(b, phase, health))[0] == 202
        time.sleep(1.5)
        b.kill9()
        b.slack.faults.clear()
        b.gh.faults.clear()
        b.start()
        b.wait(lambda: b.pending() == 0, timeout=60, what="redelivery after restart")
        top = b.slack.top_level()
        assert len(top) == 1
        ((_, ts), msg), = top.items()
        assert len(b.slack.replies(ts)) == 1 and "deployed" in msg["text"]
        assert [s["state"] for s in b.gh.statuses] == ["pending", "success"]
        assert len(b.gh.deployments) == 1
        assert [l["kind"] for l in b.audit_lines()] == ["syncing", "deployed"]
        # A replay after the restart is still folded.
        assert b.post("/v1/argocd", argocd(b, "Succeeded", "Healthy"))[0] == 200
    finally:
        b.stop()
    assert b.slack.violations == [] and b.gh.violations == []


def test_a_real_alertmanager_posts_to_the_bridge(bridge, tmp_path):
    """Debian's prometheus-alertmanager, configured like notifications/alertmanager-receiver.yaml."""
    from bridge_harness import alertmanager

    with alertmanager(bridge, tmp_path, TOKEN) as post:
        post([{"labels": {"alertname": "FnopsLatencyBudgetFastBurn", "fnops_function": "checkout",
                          "fnops_environment": "dev", "severity": "critical", "namespace": "functions-dev"},
               "annotations": {"summary": "checkout p95 latency above 300ms"}}])
        bridge.wait(lambda: any(l["kind"] == "rolled-back" for l in bridge.audit_lines()), timeout=60,
                    what="Alertmanager's webhook to trigger the rollback")
        fired = [l for l in bridge.audit_lines() if l["kind"] == "alert-firing"]
        assert fired and "FnopsLatencyBudgetFastBurn" in fired[0]["detail"]


def test_rollback_pr_opens_a_pull_request_instead_of_committing(bridge):
    """checkout's prod overlay says `rollback: pr`; its prod pin records a previous release."""
    main = git(bridge.origin, "rev-parse", "main")
    assert bridge.post("/v1/argocd", argocd(bridge, "Succeeded", "Degraded", env="prod"))[0] == 202
    bridge.wait(lambda: any(l["kind"] == "rollback-proposed" for l in bridge.audit_lines()), what="rollback PR")
    assert git(bridge.origin, "rev-parse", "main") == main
    (pr,) = bridge.gh.pulls
    assert pr["head"]["ref"] == "fnops/prod/checkout" and pr["title"].startswith("fnops: roll back checkout in prod")
    proposed = yaml.safe_load(show(bridge.origin, "functions/checkout/releases/prod.yaml", "fnops/prod/checkout"))
    assert proposed["rollbackOf"].startswith("ghcr.io/acme/functions/checkout:")


def test_rollback_off_only_reports_and_one_rollback_per_release(bridge):
    # hello keeps the default `rollback: off`: reported, nothing committed.
    assert bridge.post("/v1/argocd", argocd(bridge, "Succeeded", "Degraded", fn="hello"))[0] == 202
    # checkout degrades, then fails to sync on the same release: one rollback, the second reported.
    assert bridge.post("/v1/argocd", argocd(bridge, "Succeeded", "Degraded"))[0] == 202
    assert bridge.post("/v1/argocd", argocd(bridge, "Failed", "Degraded"))[0] == 202
    bridge.wait(lambda: bridge.pending() == 0 and len([l for l in bridge.audit_lines() if l["kind"].startswith("roll")]) == 2,
                what="rollback and its guard report")
    kinds = [(l["function"], l["kind"]) for l in bridge.audit_lines()]
    assert ("hello", "degraded") in kinds and not any(f == "hello" and k.startswith("roll") for f, k in kinds)
    rolls = [l for l in bridge.audit_lines() if l["kind"].startswith("roll")]
    assert [l["kind"] for l in rolls] == ["rolled-back", "rollback-skipped"]
    assert "superseded" in rolls[1]["detail"] or "already rolled back" in rolls[1]["detail"]
    assert int(git(bridge.origin, "rev-list", "--count", "main")) == int(git(bridge.origin, "rev-list", "--count", bridge.revision)) + 1
