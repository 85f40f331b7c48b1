"""The bridge under a slow sink, poison events and a hostile door — as a process, against
Slack/GitHub doubles that validate every call, and a bare GitOps repository."""

import json
import os
import subprocess
import time
import urllib.request

import pytest
import yaml

import argocd_template
from gitrepo import clone, git

ALERT_TOKEN = "alertmanager-only-" + "z" * 20


def argocd(b, phase="Succeeded", health="Healthy", fn="checkout", env="dev", revision=None, **kw):
    app = argocd_template.application("operation-finished", function=fn, env=env, revision=revision or b.revision,
                                      phase=phase, health=health, **kw)
    return json.loads(argocd_template.render(app))


def _commits(b):
    return git(b.origin, "log", "--format=%s", "main").splitlines()


def test_a_hanging_github_delays_neither_slack_nor_the_rollback(make_bridge, tmp_path):
    b = make_bridge(extra={"delivery": {"timeout": "30s"}})
    b.gh.hang = 60
    t0 = time.monotonic()
    assert b.post("/v1/argocd", argocd(b, "Succeeded", "Degraded"))[0] == 202
    b.wait(lambda: any(c.startswith("fnops: roll back checkout in dev") for c in _commits(b)), timeout=25,
           what="the rollback commit while GitHub hangs")
    rolled = time.monotonic() - t0
    b.wait(lambda: len(b.slack.top_level()) == 1 and b.slack.replies(next(iter(b.slack.top_level()))[1]),
           timeout=25, what="Slack while GitHub hangs")
    slack = time.monotonic() - t0
    # Well before GitHub's request could time out (30 s), let alone its 60 s hang end.
    assert rolled < 20 and slack < 20, (rolled, slack)
    assert 'fnops_bridge_deliveries{sink="github",state="pending"}' in b.metrics()


def test_poison_events_are_dead_lettered_and_later_events_flow(make_bridge, tmp_path):
    b = make_bridge(extra={"delivery": {"maxAttempts": 2}})
    work = clone(b.origin, tmp_path / "poison")
    pin = os.path.join(work, "functions/checkout/releases/dev.yaml")
    with open(pin, "a") as f:
        f.write("releasedAt: 2026-11-22 10:00:00\nimagee: typo\n")  # an unquoted timestamp and an unknown key
    git(work, "commit", "--quiet", "-am", "a broken pin")
    git(work, "push", "--quiet", "origin", "main")
    bad_rev = git(work, "rev-parse", "HEAD")
    assert b.post("/v1/argocd", argocd(b, "Running", "Progressing", revision=bad_rev))[0] == 202
    b.wait(lambda: all(f'fnops_bridge_deliveries{{sink="{s}",state="failed"}} 1.0' in b.metrics()
                       for s in ("slack", "github", "audit")), what="a dead letter in every sink")
    # The next, valid release of the same function is delivered: the dead letter blocks nothing.
    git(work, "checkout", "--quiet", "HEAD~1", "--", "functions/checkout/releases/dev.yaml")
    git(work, "commit", "--quiet", "-am", "fix the pin")
    git(work, "push", "--quiet", "origin", "main")
    good_rev = git(work, "rev-parse", "HEAD")
    assert b.post("/v1/argocd", argocd(b, "Succeeded", "Healthy", revision=good_rev))[0] == 202
    b.wait(lambda: len(b.slack.top_level()) == 1, what="the later event in Slack")
    r = subprocess.run(["fnops", "bridge", "deliveries", "--config", str(b.config), "--state", "failed",
                        "--output", "json"], capture_output=True, text=True, env=b.env)
    failed = json.loads(r.stdout)
    assert {d["sink"] for d in failed} == {"slack", "github", "audit"}
    assert all("invalid release at" in d["error"] and "releases/dev.yaml" in d["error"] for d in failed), failed
    r = subprocess.run(["fnops", "bridge", "retry", "--config", str(b.config), f"{failed[0]['event']}/slack"],
                       capture_output=True, text=True, env=b.env)
    assert r.returncode == 0 and "1 deliveries back to pending" in r.stdout
    b.wait(lambda: 'fnops_bridge_deliveries{sink="slack",state="failed"} 1.0' in b.metrics(), what="retried, failed again")


def test_temporary_errors_are_retried_a_bounded_number_of_times(make_bridge):
    b = make_bridge(extra={"delivery": {"maxAttempts": 2}})
    b.gh.faults += [(503, {}, {"message": "unavailable"})] * 50
    assert b.post("/v1/argocd", argocd(b))[0] == 202
    b.wait(lambda: 'fnops_bridge_deliveries{sink="github",state="failed"} 1.0' in b.metrics(), timeout=20,
           what="github to give up")
    r = subprocess.run(["fnops", "bridge", "deliveries", "--config", str(b.config), "--state", "failed"],
                       capture_output=True, text=True, env=b.env)
    assert "gave up after 2 attempts" in r.stdout and "503" in r.stdout


DOOR = [
    ("../../etc", "dev", 400), ("héllo", "dev", 400), ("a\u0000b", "dev", 400), ("a" * 300, "dev", 400),
    (7, "dev", 400), ("checkout", "Dev", 400), ("checkout", "../x", 400),
]


@pytest.mark.parametrize("fn,env,status", DOOR, ids=[f"{str(f)[:12]}-{e}" for f, e, _ in DOOR])
def test_names_at_the_door_are_dns_labels(make_bridge, fn, env, status):
    b = make_bridge()
    body = argocd(b)
    body["labels"]["fnops.dev/function"], body["labels"]["fnops.dev/environment"] = fn, env
    code, out = b.post("/v1/argocd", body)
    assert code == status and any(w in out["error"] for w in ("DNS label", "must be a string", "NUL", "longer than")), out
    assert "fnops_bridge_events 0.0" in b.metrics()


def test_wrong_types_strict_json_and_depth_are_400_with_nothing_stored(make_bridge):
    b = make_bridge()
    cases = [dict(argocd(b), phase=["Running"]), dict(argocd(b), health={"status": "Healthy"}),
             dict(argocd(b), operationRevision=12345), dict(argocd(b), operationRevision="abc")]
    for body in cases:
        code, out = b.post("/v1/argocd", body)
        assert code == 400 and "field '" in out["error"], out
    raw = json.dumps(argocd(b)).replace('"syncStatus": "Synced"', '"syncStatus": NaN').encode()
    assert b.post("/v1/argocd", None, raw=raw) == (400, {"error": "body is not strict JSON (NaN is not a number)"})
    deep = b'{"app": ' + b"[" * 50_000 + b"]" * 50_000 + b"}"
    assert b.post("/v1/argocd", None, raw=deep) == (400, {"error": "body nests deeper than 32 levels"})
    am = {"version": "4", "status": "firing", "alerts": [{"status": "firing", "labels": {"fnops_function": 1}}]}
    assert b.post("/v1/alertmanager", am)[0] == 400
    assert "fnops_bridge_events 0.0" in b.metrics()
    assert "Traceback" not in b.logs()


def test_metrics_cannot_be_forged_or_grown_by_requests(make_bridge):
    b = make_bridge()
    before = b.metrics()
    for i in range(300):
        path = f'/v1/x"}} 1\\nfnops_forged{{a="b"}} 1 {i}' + "p" * 4000
        req = urllib.request.Request(b.url + urllib.request.quote(path), method="GET")
        try:
            urllib.request.urlopen(req, timeout=5).close()
        except urllib.error.HTTPError:
            pass
    after = b.metrics()
    assert "fnops_forged" not in after
    series = lambda text: {line.rsplit(" ", 1)[0] for line in text.splitlines() if line and not line.startswith("#")}  # noqa: E731
    new = series(after) - series(before)
    assert new <= {'fnops_bridge_http_requests_total{code="404",path="other"}',
                   'fnops_bridge_http_requests_created{code="404",path="other"}',
                   'fnops_bridge_http_requests_total{code="200",path="/metrics"}',
                   'fnops_bridge_http_requests_created{code="200",path="/metrics"}'}, new


def test_a_pin_naming_a_foreign_repository_never_reaches_github(make_bridge, tmp_path):
    b = make_bridge()
    work = clone(b.origin, tmp_path / "evil")
    pin = os.path.join(work, "functions/checkout/releases/dev.yaml")
    for i, repo in enumerate(("evil/other", "acme/functions/../../../orgs/acme/hooks?x=")):
        with open(pin) as f:
            data = yaml.safe_load(f)
        data["source"]["repo"] = repo
        with open(pin, "w") as f:
            yaml.safe_dump(data, f)
        git(work, "commit", "--quiet", "-am", f"repo {i}")
        git(work, "push", "--quiet", "origin", "main")
        assert b.post("/v1/argocd", argocd(b, revision=git(work, "rev-parse", "HEAD")))[0] == 202
    b.wait(lambda: 'fnops_bridge_deliveries{sink="github",state="failed"} 2.0' in b.metrics(), what="refusals")
    assert b.gh.requests == []  # the token went nowhere


def test_slack_text_is_escaped_links_come_from_config_and_channels_are_limited(make_bridge, tmp_path):
    b = make_bridge()
    body = argocd(b, "Failed", "Degraded", message="<!channel> see <https://evil.example|the fix> & more")
    body["argocdUrl"] = "https://evil.example"
    assert b.post("/v1/argocd", body)[0] == 202
    b.wait(lambda: b.slack.top_level(), what="a Slack message")
    (channel, _), msg = next(iter(b.slack.top_level().items()))
    text = json.dumps(msg)
    assert "<!channel>" not in text and "<https://evil" not in text and "&lt;!channel&gt;" in text
    assert "<https://argocd.example.com/applications/" in text and "<https://evil.example" not in text
    # A function naming a channel outside slack.allowedChannels is posted to the default one.
    work = clone(b.origin, tmp_path / "chan")
    fy = os.path.join(work, "functions/checkout/function.yaml")
    with open(fy) as f:
        text = f.read().replace('notify: {slack: "#checkout"}', 'notify: {slack: "#general"}')
    with open(fy, "w") as f:
        f.write(text)
    git(work, "commit", "--quiet", "-am", "shout")
    # The bridge may be committing to main meanwhile (the degraded release's rollback): a
    # developer's push after it rebases, as anyone's would.
    for attempt in range(5):
        git(work, "pull", "--quiet", "--rebase", "origin", "main")
        try:
            git(work, "push", "--quiet", "origin", "main")
            break
        except AssertionError:
            if attempt == 4:
                raise
    assert b.post("/v1/argocd", argocd(b, revision=git(work, "rev-parse", "HEAD")))[0] == 202
    b.wait(lambda: len(b.slack.top_level()) == 2, what="the second message")
    assert {c for c, _ in b.slack.top_level()} == {"C0TEAM", "C0DEPLOYS"}


def test_only_the_fnops_slo_alerts_roll_back_and_each_door_has_its_token(make_bridge):
    b = make_bridge(extra={"auth": {"alertmanagerTokenEnv": "AM_TOKEN"}}, env={"AM_TOKEN": ALERT_TOKEN})
    alert = {"version": "4", "status": "firing", "groupKey": "{}:{alertname=\"HighCPU\"}", "alerts": [
        {"status": "firing", "labels": {"alertname": "HighCPU", "fnops_function": "checkout",
                                        "fnops_environment": "dev", "namespace": "functions-dev"},
         "startsAt": "2026-11-22T10:00:00Z"}]}
    assert b.post("/v1/alertmanager", alert)[0] == 401  # the Argo CD token does not open this door
    assert b.post("/v1/alertmanager", alert, token=ALERT_TOKEN)[0] == 202
    b.wait(lambda: any("not an fnops SLO alert" in line.get("detail", "") for line in b.audit_lines()),
           what="the skipped rollback in the audit log")
    assert not any(c.startswith("fnops: roll back") for c in _commits(b))


def test_the_outbox_stays_bounded_under_a_flood(make_bridge):
    b = make_bridge(extra={"retention": {"maxPendingEvents": 10}, "delivery": {"timeout": "30s"}})
    b.gh.hang = 60  # nothing drains: every event stays pending for GitHub
    codes = []
    for rev in b.new_revisions(14):  # distinct events (the key folds repeats of one app and revision)
        codes.append(b.post("/v1/argocd", argocd(b, "Running", "Progressing", revision=rev, message="m" * 500_000))[0])
    assert codes[:10] == [202] * 10 and codes[10:] == [503] * 4
    size = sum(os.path.getsize(os.path.join(b.data, f)) for f in os.listdir(b.data) if f.startswith("bridge.db"))
    assert size < 2_000_000, size  # messages are kept bounded, not 500 KB each


def test_retention_prunes_delivered_events_and_their_records(tmp_path):
    from fnops.bridge.store import Store

    s = Store(str(tmp_path / "o.db"))
    old = {"key": "argocd:a:1:deployed", "function": "a", "environment": "dev", "receivedAt": time.time() - 10_000}
    new = {"key": "argocd:a:2:deployed", "function": "a", "environment": "dev"}
    stuck = {"key": "argocd:a:3:deployed", "function": "a", "environment": "dev", "receivedAt": time.time() - 10_000}
    (old_id, _), (new_id, _), (stuck_id, _) = s.accept([old, new, stuck], lambda e: ["slack"])
    s.done(old_id, "slack")
    s.done(new_id, "slack")
    s.fail(stuck_id, "slack", "boom")
    s.put("release", old["key"], {"image": "x"})
    assert s.prune(time.time() - 5_000) == 0  # just delivered: updated_at is now
    assert s.prune(time.time() + 1) == 2  # the delivered ones (old and new); the failed one stays
    assert s.get("release", old["key"]) is None
    assert [(r[0], r[2]) for r in s.deliveries()] == [(stuck_id, "failed")]
    s.close()


def test_an_alert_decides_on_the_tip_it_fetched_not_on_a_stale_mirror(make_bridge, tmp_path):
    from conftest import fnops
    from gitrepo import head

    b = make_bridge()
    assert b.post("/v1/argocd", argocd(b, "Running", "Progressing"))[0] == 202  # the mirror fetches once here
    b.wait(lambda: b.pending() == 0, what="the first event")
    work = clone(b.origin, tmp_path / "newer")  # a newer release lands after that, unseen by the bridge
    newer = "ghcr.io/acme/functions/checkout:sha-c0ffee0@sha256:" + "c" * 64
    r = fnops("bump", "checkout", "--env", "dev", "--image", newer, "--source-commit", head(work), cwd=work)
    assert r.returncode == 0, r.stderr
    alert = {"version": "4", "status": "firing", "groupKey": "{}:{alertname=\"FnopsErrorBudgetFastBurn\"}", "alerts": [
        {"status": "firing", "labels": {"alertname": "FnopsErrorBudgetFastBurn", "fnops_function": "checkout",
                                        "fnops_environment": "dev", "namespace": "functions-dev"},
         "startsAt": "2026-11-22T10:00:00Z"}]}
    assert b.post("/v1/alertmanager", alert)[0] == 202
    b.wait(lambda: any(line["kind"] == "rolled-back" for line in b.audit_lines()), what="the rollback")
    pin = yaml.safe_load(git(b.origin, "show", "main:functions/checkout/releases/dev.yaml"))
    assert pin["rollbackOf"] == newer  # the release running now was rolled back, not the one before it
