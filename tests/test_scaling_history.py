"""Issue 26, item 1: scaling history in the audit trail.

KEDA's CloudEventSource posts its ScaledObject events (binary mode, as the CloudEvents Go SDK
client in KEDA's http event sink sends them; structured mode too) to the bridge's own door, and
the scaling alerts `fnops render` writes for Knative's autoscaler come through a real
Alertmanager. The bridge records one line per transition on the audit branch of a real bare
Git remote, bounded per function per hour with a counted "more suppressed" line, tells the
release's Slack thread (a double that validates every call) only what matters, never rolls
back on them, and refuses bad bodies without recording anything.

The rules themselves are checked with Prometheus' promtool over the gauge each Knative metrics
generation exports, and the PrometheusRule against its CRD schema.
"""

from __future__ import annotations

import json
import os
import time
import urllib.request
import uuid

import pytest
import yaml

import promtool
import schemas
from bridge_harness import TOKEN, alertmanager
from conftest import ROOT, fnops
from gitrepo import git

PATH_TOKEN = "keda-path-token-" + "k" * 24
GENERATIONS = ("otel", "otel-1.19", "opencensus")
PIN = "image: registry.example.com/fns/checkout:sha-1111111@sha256:" + "1" * 64 + "\n"


# -- the rules --------------------------------------------------------------------------------


def folder(tmp_path, spec: str, name="checkout"):
    d = tmp_path / name
    (d / "releases").mkdir(parents=True)
    (d / "function.yaml").write_text(spec)
    (d / "releases" / "prod.yaml").write_text(PIN)
    return d


def rule_of(d, generation="otel", namespace="functions-prod") -> dict:
    r = fnops("render", str(d), "--env", "prod",
              env={"ARGOCD_APP_NAMESPACE": namespace, "FNOPS_KNATIVE_METRICS": generation})
    assert r.returncode == 0, r.stderr
    (rule,) = [o for o in yaml.safe_load_all(r.stdout) if o["kind"] == "PrometheusRule"]
    assert schemas.validate(rule) == [], rule  # the CRD's schema, unknown fields refused
    return rule


SPEC = "runtime: python3.12\nslo: {errorRate: 1%}\nscale: {min: 0, max: 5}\n"


@pytest.mark.parametrize("generation", GENERATIONS)
def test_the_scaling_rules_ride_in_the_prometheusrule_and_pass_promtool(tmp_path, generation):
    rule = rule_of(folder(tmp_path, SPEC), generation)
    slo, scaling = rule["spec"]["groups"]
    assert scaling["name"] == "fnops.checkout.scaling"
    assert [r["alert"] for r in scaling["rules"]] == ["FnopsScaledToZero", "FnopsAtMaxScale"]
    for r in scaling["rules"]:
        # what tells them from the SLO alerts: the bridge keys on fnops_scaling, people on fnops_action
        assert r["labels"]["fnops_action"] == "record" and r["labels"]["fnops_scaling"] in ("zero", "max")
        assert r["labels"]["namespace"] == "functions-prod" and r["labels"]["fnops_function"] == "checkout"
    assert all("fnops_scaling" not in r["labels"] for r in slo["rules"])
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}, sort_keys=False))
    r = promtool.run("check", "rules", str(tmp_path / "rules.yaml"))
    assert r.returncode == 0 and "SUCCESS: 4 rules found" in r.stdout, r.stdout + r.stderr


def test_only_what_can_happen_is_watched(tmp_path):
    always_up = rule_of(folder(tmp_path / "a", "runtime: python3.12\nslo: {errorRate: 1%}\nscale: {min: 1, max: 3}\n"))
    assert [r["alert"] for r in always_up["spec"]["groups"][1]["rules"]] == ["FnopsAtMaxScale"]
    unbounded = rule_of(folder(tmp_path / "b", "runtime: python3.12\nslo: {errorRate: 1%}\n"))
    assert [r["alert"] for r in unbounded["spec"]["groups"][1]["rules"]] == ["FnopsScaledToZero"]
    neither = rule_of(folder(tmp_path / "c", "runtime: python3.12\nslo: {errorRate: 1%}\nscale: {min: 1}\n"))
    assert [g["name"] for g in neither["spec"]["groups"]] == ["fnops.checkout.slo"]


# The gauge as each generation's exporter writes it (render/scaling.py says where it was read).
GAUGE = {"otel": ("kn_revision_pods_count", "k8s_namespace_name", "kn_service_name", "kn_revision_name",
                  ', otel_scope_name="knative.dev/serving/pkg/reconciler/autoscaling/kpa"'),
         "opencensus": ("autoscaler_actual_pods", "namespace_name", "service_name", "revision_name", "")}
GAUGE["otel-1.19"] = GAUGE["otel"]


def pods(generation, namespace, revision, values: str) -> dict:
    metric, ns, svc, rev, extra = GAUGE[generation]
    return {"series": f'{metric}{{{ns}="{namespace}", {svc}="checkout", {rev}="{revision}", '
                      f'job="autoscaler", instance="10.0.0.9:9090"{extra}}}', "values": values}


def firing(minute: int, *names: str) -> dict:
    labels = {"FnopsScaledToZero": "zero", "FnopsAtMaxScale": "max"}
    samples = [{"labels": "ALERTS{" + ", ".join(f'{k}="{v}"' for k, v in sorted({
        "alertname": n, "alertstate": "firing", "fnops_action": "record", "fnops_environment": "prod",
        "fnops_function": "checkout", "fnops_scaling": labels[n], "namespace": "functions-prod",
        "severity": "info"}.items())) + "}", "value": 1} for n in names]
    return {"expr": 'ALERTS{alertstate="firing"}', "eval_time": f"{minute}m", "exp_samples": samples}


@pytest.mark.parametrize("generation", GENERATIONS)
def test_the_rules_fire_on_zero_and_on_a_long_stay_at_max(tmp_path, generation):
    """One function over 80 minutes: 2 pods, zero from minute 10, woken at 30 and at its max
    (5) until 55 across a rollout (two revisions), then 3. A namesake in another namespace
    sits at zero throughout and must not count."""
    rule = rule_of(folder(tmp_path, SPEC), generation)
    series = [
        pods(generation, "functions-prod", "checkout-00001", "2x9 0x20 3x24 0x25"),
        pods(generation, "functions-prod", "checkout-00002", "0x29 2x25 3x25"),
        pods(generation, "functions-dev", "checkout-00007", "0x80"),
    ]
    r = promtool.unit_tests(tmp_path, {"rules.yaml": rule["spec"]["groups"]}, [{
        "interval": "1m", "input_series": series, "promql_expr_test": [
            firing(9), firing(10), firing(12, "FnopsScaledToZero"),  # `for: 1m`: fires at the second zero
            firing(29, "FnopsScaledToZero"), firing(31),  # woke: resolved at once
            firing(39), firing(41, "FnopsAtMaxScale"),  # ten minutes at 5 pods
            firing(54, "FnopsAtMaxScale"), firing(56), firing(79)]}])
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]


# -- the bridge -------------------------------------------------------------------------------


def keda_binary(kind: str, name: str, namespace: str, at: float, reason="", message="", cluster="kind-fnops"):
    """What KEDA's CloudEventHTTPHandler.EmitEvent sends (pkg/eventemitter, v2.21.0): the Go
    SDK's HTTP client in binary mode, a fresh UUID and time per send, data {reason, message}."""
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(at)) + f".{int(at % 1 * 1e9):09d}Z"
    headers = {"ce-specversion": "1.0", "ce-id": str(uuid.uuid4()), "ce-source": f"/{cluster}/keda/keda",
               "ce-subject": f"/{cluster}/{namespace}/scaledobject/{name}", "ce-type": f"keda.scaledobject.{kind}.v1",
               "ce-time": stamp, "content-type": "application/json"}
    return headers, json.dumps({"reason": reason, "message": message}).encode()


def keda_structured(kind: str, name: str, namespace: str, at: float, reason="", message=""):
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at))
    body = {"specversion": "1.0", "id": str(uuid.uuid4()), "source": "/kind-fnops/keda/keda",
            "subject": f"/kind-fnops/{namespace}/scaledobject/{name}", "type": f"keda.scaledobject.{kind}.v1",
            "time": stamp, "datacontenttype": "application/json", "data": {"reason": reason, "message": message}}
    return {"content-type": "application/cloudevents+json"}, json.dumps(body).encode()


def send(bridge, path, headers, raw):
    req = urllib.request.Request(bridge.url + path, data=raw, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def scaling_lines(bridge) -> list[dict]:
    return [line for line in bridge.audit_lines() if line["source"] == "scaling"]


def events_stored(bridge) -> int:
    (line,) = [x for x in bridge.metrics().splitlines() if x.startswith("fnops_bridge_events ")]
    return int(float(line.split()[1]))


@pytest.fixture
def bridge(make_bridge):
    return make_bridge(extra={"auth": {"kedaPathTokenEnv": "FNOPS_KEDA_PATH_TOKEN"}, "scaling": {"maxPerHour": 3}},
                       env={"FNOPS_KEDA_PATH_TOKEN": PATH_TOKEN})


def test_keda_flaps_are_coalesced_into_bounded_lines_and_a_suppressed_count(bridge):
    """thumbnail-worker (deployer: keda) in dev: its ScaledObject fails and recovers ten times
    in one hour (two hours ago), repeats a failure KEDA re-sends at each reconcile, and fails
    once more the next hour."""
    hour = (int(time.time()) // 3600 - 2) * 3600
    door = f"/v1/keda/{PATH_TOKEN}"  # KEDA's http sink sends no headers: the token is in its URI
    answers = []
    for i in range(10):
        kind = "failed" if i % 2 == 0 else "ready"
        failed = kind == "failed"
        headers, raw = keda_binary(kind, "thumbnail-worker", "functions-dev", hour + 60 * i + 0.123456789,
                                   reason="ScaledObjectCheckFailed" if failed else "ScaledObjectReady",
                                   message="error parsing kafka metadata" if failed else "ScaledObject is ready")
        answers.append(send(bridge, door, headers, raw))
        if i == 0:  # a repeat of the state it is in: no transition
            answers.append(send(bridge, door, *keda_binary("failed", "thumbnail-worker", "functions-dev", hour + 5)))
    assert [code for code, _ in answers] == [202, 200, 202, 202, 200, 200, 200, 200, 200, 200, 200]
    assert answers[1][1] == {"coalesced": {"unchanged": 1, "suppressed": 0}}
    assert answers[-1][1] == {"coalesced": {"unchanged": 0, "suppressed": 1}}
    # the next hour: the count of what was not written, then the transition itself
    code, _ = send(bridge, door, *keda_binary("failed", "thumbnail-worker", "functions-dev", hour + 3600 + 30,
                                              reason="ScaledObjectCheckFailed", message="no kafka brokers"))
    assert code == 202
    bridge.wait(lambda: len(scaling_lines(bridge)) == 5 and bridge.pending() == 0, what="five scaling lines")
    lines = scaling_lines(bridge)
    assert [(x["function"], x["environment"], x["kind"]) for x in lines] == [
        ("thumbnail-worker", "dev", "scaler-failed"), ("thumbnail-worker", "dev", "scaler-ready"),
        ("thumbnail-worker", "dev", "scaler-failed"), ("thumbnail-worker", "dev", "scaling-suppressed"),
        ("thumbnail-worker", "dev", "scaler-failed")]
    start = time.strftime("%Y-%m-%dT%H:00Z", time.gmtime(hour))
    assert lines[3]["detail"] == (f"scaling transitions not recorded: 7 more scaling transitions in the hour from "
                                  f"{start} not recorded (scaling.maxPerHour: 3)")
    assert lines[0]["detail"] == "KEDA scaler failed: ScaledObjectCheckFailed: error parsing kafka metadata"
    assert lines[0]["happenedAt"] == time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(hour))
    pinned = yaml.safe_load(git(bridge.origin, "show", "main:functions/thumbnail-worker/releases/dev.yaml"))
    assert {x["image"] for x in lines} == {pinned["image"]}  # tied to the release pinned in dev
    # Slack: the failures and the recovery from one, in the release's thread; never the count line.
    ((_, top_ts),) = bridge.slack.top_level()
    replies = [m["text"] for m in bridge.slack.replies(top_ts)]
    texts = [m["text"] for m in bridge.slack.messages.values()]
    assert len(texts) == 4, texts  # failed (top level), then ready, failed, failed as thread replies
    assert sum("KEDA scaler failed" in t for t in texts) == 3 and sum("KEDA scaler ready" in t for t in texts) == 1
    assert not any("not recorded" in t for t in texts)
    assert len(replies) == 3 and "KEDA scaler ready" in replies[0]
    assert bridge.gh.requests == []  # no commit status or deployment for a scaling transition


def test_scaling_alerts_from_a_real_alertmanager_are_recorded_and_never_roll_back(bridge, tmp_path):
    """checkout in dev (rollback: auto, inside its bake time): Alertmanager, configured like
    notifications/alertmanager-receiver.yaml, posts the rendered scaling alerts — scaled to zero,
    woken (resolved), at max for a while — to the same door as the SLO alerts."""
    main = git(bridge.origin, "rev-parse", "main")
    d = folder(tmp_path, "runtime: python3.12\nslo: {errorRate: 1%}\nscale: {min: 0, max: 20}\n")
    r = fnops("render", str(d), "--env", "prod", env={"ARGOCD_APP_NAMESPACE": "functions-dev"})
    (rule,) = [o for o in yaml.safe_load_all(r.stdout) if o["kind"] == "PrometheusRule"]
    rendered = {x["alert"]: dict(x["labels"], fnops_environment="dev") for x in rule["spec"]["groups"][1]["rules"]}

    def alert(name, starts, ends=None):
        a = {"labels": {"alertname": name, **rendered[name]}, "annotations": {"summary": f"checkout in dev: {name}"},
             "startsAt": starts}
        if ends:
            a["endsAt"] = ends
        post([a])

    def kinds():
        return [x["kind"] for x in scaling_lines(bridge) if x["function"] == "checkout"]

    iso = lambda t: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))  # noqa: E731
    with alertmanager(bridge, tmp_path, TOKEN) as post:
        t0 = time.time() - 120
        alert("FnopsScaledToZero", iso(t0))
        bridge.wait(lambda: kinds() == ["scaled-to-zero"], timeout=60, what="scaled to zero")
        alert("FnopsScaledToZero", iso(t0), iso(time.time() - 1))  # woken: Alertmanager sends the resolution
        bridge.wait(lambda: kinds() == ["scaled-to-zero", "scaled-from-zero"], timeout=60, what="scaled from zero")
        alert("FnopsAtMaxScale", iso(time.time() - 30))
        bridge.wait(lambda: kinds() == ["scaled-to-zero", "scaled-from-zero", "at-max-scale"] and bridge.pending() == 0,
                    timeout=60, what="at max scale")
    lines = bridge.audit_lines()
    assert not [x for x in lines if x["kind"] in ("alert-firing", "rolled-back", "rollback-skipped")], lines
    assert git(bridge.origin, "rev-parse", "main") == main  # no rollback commit
    assert bridge.gh.requests == []
    texts = [m["text"] for m in bridge.slack.messages.values()]
    assert len(texts) == 1 and "at max scale" in texts[0], texts  # zero and waking are history, not news


def test_bad_bodies_are_refused_and_nothing_is_recorded(bridge):
    at = time.time()
    before = events_stored(bridge)
    headers, raw = keda_binary("failed", "thumbnail-worker", "functions-dev", at, reason="X", message="y")
    # no token: not in the path, not in a header
    assert send(bridge, "/v1/keda", headers, raw)[0] == 401
    assert send(bridge, "/v1/keda/" + "w" * 40, headers, raw)[0] == 401
    auth = {"authorization": f"Bearer {TOKEN}"}  # the header way (a proxy in front of KEDA) works as well
    cases = {
        "no ce-specversion header": ({k: v for k, v in headers.items() if k != "ce-specversion"}, raw),
        "field 'specversion'": ({**headers, "ce-specversion": "0.3"}, raw),
        "body is not valid JSON": (headers, b"{not json"),
        "field 'subject'": ({**headers, "ce-subject": "thumbnail-worker"}, raw),
        "missing required CloudEvent attribute 'id'": ({k: v for k, v in headers.items() if k != "ce-id"}, raw),
        "field 'time'": ({**headers, "ce-time": "yesterday"}, raw),
        "is not accepted": ({"content-type": "application/cloudevents-batch+json"}, b"[]"),
        "field 'data.reason' must be a string": (headers, b'{"reason": 7}'),
        "body is not strict JSON": (keda_structured("failed", "thumbnail-worker", "functions-dev", at)[0],
                                    b'{"specversion": "1.0", "n": NaN}'),
    }
    for why, (h, body) in cases.items():
        code, answer = send(bridge, f"/v1/keda/{PATH_TOKEN}", h, body)
        assert code == 400 and why in answer["error"], (why, code, answer)
        assert send(bridge, "/v1/keda", {**h, **auth}, body)[0] == 400
    # an oversized body is refused from its declared length, before it is read (the path token too)
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", bridge.port, timeout=10)
    conn.putrequest("POST", f"/v1/keda/{PATH_TOKEN}")
    for k, v in {**headers, "content-length": str(2 << 20)}.items():
        conn.putheader(k, v)
    conn.endheaders()
    r = conn.getresponse()
    assert r.status == 413 and b"larger than" in r.read()
    conn.close()
    # a well-formed scaling alert that is not one fnops renders, and one from another namespace
    foreign = {"version": "4", "status": "firing", "groupKey": "{}:{}", "alerts": [
        {"status": "firing", "labels": {"alertname": "SomethingElse", "fnops_scaling": "zero",
                                        "fnops_function": "checkout", "fnops_environment": "dev",
                                        "namespace": "functions-dev"}, "startsAt": "2026-11-22T10:00:00Z"},
        {"status": "firing", "labels": {"alertname": "FnopsAtMaxScale", "fnops_scaling": "max",
                                        "fnops_function": "checkout", "fnops_environment": "dev",
                                        "namespace": "team-b"}, "startsAt": "2026-11-22T10:00:00Z"}]}
    code, answer = bridge.post("/v1/alertmanager", foreign)
    assert code == 200 and "ignored" in answer
    # KEDA events about objects fnops does not record: another namespace, a ScaledJob
    assert send(bridge, f"/v1/keda/{PATH_TOKEN}",
                *keda_binary("failed", "thumbnail-worker", "kube-system", at))[1].get("ignored")
    h, body = keda_binary("failed", "thumbnail-worker", "functions-dev", at)
    h = {**h, "ce-type": "keda.scaledjob.failed.v1", "ce-subject": "/kind-fnops/functions-dev/scaledjob/x"}
    assert send(bridge, f"/v1/keda/{PATH_TOKEN}", h, body)[1].get("ignored")
    assert events_stored(bridge) == before
    time.sleep(1)
    assert scaling_lines(bridge) == []
    assert PATH_TOKEN not in bridge.metrics() and PATH_TOKEN not in bridge.logs()


def test_structured_mode_is_read_too(bridge):
    headers, raw = keda_structured("paused", "thumbnail-worker", "functions-dev", time.time(),
                                   reason="ScaledObjectPaused", message="ScaledObject is paused")
    assert send(bridge, f"/v1/keda/{PATH_TOKEN}", headers, raw)[0] == 202
    bridge.wait(lambda: [x["kind"] for x in scaling_lines(bridge)] == ["scaling-paused"], what="paused line")
    assert bridge.slack.messages == {}  # a pause is history, not news


# -- the CloudEventSource we ship, against KEDA's own Go types --------------------------------

KEDA_EVENTING = os.path.expanduser("~/go/pkg/mod/github.com/kedacore/keda/v2@v2.21.0/apis/eventing/v1alpha1")


def keda_types() -> tuple[dict, set]:
    """(struct name -> its JSON field names, every CloudEventType value in AllEventTypes), read
    from KEDA's source in the Go module cache (tests/conformance pins the same version)."""
    import re

    if not os.path.isdir(KEDA_EVENTING):
        why = "needs KEDA v2.21.0 in the Go module cache (tests/conformance downloads it)"
        if os.environ.get("CI"):
            pytest.fail(why)
        pytest.skip(why)
    src = ""
    for name in ("cloudeventsource_types.go", "cloudevent_types.go", "groupversion_info.go"):
        with open(os.path.join(KEDA_EVENTING, name), encoding="utf-8") as f:
            src += f.read()
    structs = {m.group(1): set(re.findall(r'json:"([A-Za-z]+)', m.group(2)))
               for m in re.finditer(r"type (\w+) struct \{(.*?)\n\}", src, re.S)}
    consts = dict(re.findall(r'(\w+Type) CloudEventType = "([^"]+)"', src))
    body = re.search(r"var AllEventTypes = \[\]CloudEventType\{(.*?)\}", src, re.S).group(1)
    group = re.search(r'Group: "([^"]+)", Version: "([^"]+)"', src).groups()
    return structs | {"__group__": group}, {consts[n] for n in re.findall(r"\w+", body)}


def test_the_shipped_cloudeventsource_has_kedas_shape():
    """No CloudEventSource CRD is among the schemas fnops is tested against, so its fields
    are checked against KEDA's Go types and its webhook's rule (validateSpec)."""
    structs, all_types = keda_types()
    with open(os.path.join(ROOT, "notifications", "keda-cloudeventsource.yaml")) as f:
        (ces,) = list(yaml.safe_load_all(f))
    assert ces["apiVersion"] == "/".join(structs["__group__"]) and ces["kind"] == "CloudEventSource"
    spec = ces["spec"]
    assert set(spec) <= structs["CloudEventSourceSpec"]
    assert set(spec["destination"]) <= structs["Destination"]
    assert set(spec["destination"]["http"]) <= structs["CloudEventHTTP"]
    assert set(spec["eventSubscription"]) <= structs["EventSubscription"]
    subscribed = spec["eventSubscription"]["includedEventTypes"]
    assert "excludedEventTypes" not in spec["eventSubscription"]  # the webhook refuses both at once
    assert set(subscribed) <= all_types
    # every ScaledObject type the bridge reads is one KEDA emits, and the manifest asks for each
    from fnops.bridge.scaling import KEDA_TYPES

    assert set(KEDA_TYPES) <= all_types and set(KEDA_TYPES) == set(subscribed)
    assert spec["destination"]["http"]["uri"].split("/v1/keda/", 1)[0].startswith("http://fnops-bridge.")


def test_a_failing_outbox_forgets_no_transition(tmp_path):
    """The door answers 503 when the outbox cannot take an event, and the sender tries again:
    the coalescer must not have counted the state as seen (or the retry would be 'unchanged')."""
    from fnops.bridge.scaling import Coalescer, transition
    from fnops.bridge.store import open_store

    store = open_store(f"sqlite:///{tmp_path}/outbox.db")
    try:
        c = Coalescer(store, max_per_hour=2)
        def ev():
            return transition("checkout", "dev", "max", "at-max-scale", time.time(), "x", namespace="functions-dev",
                              ident="a1")

        def broken(_):
            raise OSError("disk full")

        with pytest.raises(OSError):
            c.accept([ev()], broken)
        results, told = c.accept([ev()], lambda evs: store.accept(evs, lambda e: ["audit"]))
        assert len(results) == 1 and told == {"unchanged": 0, "suppressed": 0}
        assert c.accept([ev()], lambda evs: store.accept(evs, lambda e: ["audit"])) == (
            [], {"unchanged": 1, "suppressed": 0})
    finally:
        store.close()


def test_a_bad_scaling_setting_is_one_line_naming_it_and_exit_2(tmp_path):
    cfg = tmp_path / "bridge.yaml"
    cfg.write_text("auth: {bearerTokenEnv: T, kedaPathTokenEnv: KEDA_PATH}\n"
                   "gitops: {repo: https://github.com/acme/functions.git}\n"
                   "scaling: {maxPerHour: 0}\n")
    r = fnops("bridge", "check-config", str(cfg), env={"T": "t" * 32, "KEDA_PATH": "short/token"})
    assert r.returncode == 2
    lines = r.stdout.splitlines() + r.stderr.splitlines()
    assert any(line.startswith(f"{cfg}:1:") and "auth.kedaPathTokenEnv" in line and "at least 24" in line
               for line in lines), lines
    assert any(line.startswith(f"{cfg}:3:") and "scaling.maxPerHour" in line for line in lines), lines
    assert not any("short/token" in line for line in lines)  # the token itself is never printed


def test_a_function_that_goes_quiet_still_gets_its_count(tmp_path):
    """Flaps past the bound, then nothing: once the hour is over and a minute has passed
    without another, the count is written by itself — once, and a late transition of that
    hour gets a count line of its own."""
    from fnops.bridge.scaling import Coalescer, transition
    from fnops.bridge.store import open_store

    store = open_store(f"sqlite:///{tmp_path}/outbox.db")
    now = [3600.0 * 24 * 400 + 3590]  # ten seconds before an hour ends
    stored = []

    def accept(evs):
        stored.extend(evs)
        return store.accept(evs, lambda e: ["audit"])

    try:
        c = Coalescer(store, max_per_hour=2, clock=lambda: now[0])
        for i in range(6):
            kind = "scaled-to-zero" if i % 2 == 0 else "scaled-from-zero"
            c.accept([transition("hello", "dev", "zero", kind, now[0] - 300 + i, "", namespace="functions-dev",
                                 ident=str(i))], accept)
        assert [e["kind"] for e in stored] == ["scaled-to-zero", "scaled-from-zero"]
        assert c.flush(accept) == 0  # the hour is not over
        now[0] += 15  # the hour is over, but the last flap was not a minute before
        assert c.flush(accept) == 0
        now[0] += 60
        assert c.flush(accept) == 1 and c.flush(accept) == 0
        assert stored[-1]["kind"] == "scaling-suppressed" and stored[-1]["suppressed"] == 4
        # a late flap of that hour: counted again, written again as its own line
        c.accept([transition("hello", "dev", "zero", "scaled-to-zero", now[0] - 3600, "", namespace="functions-dev",
                             ident="late")], accept)
        now[0] += 61
        assert c.flush(accept) == 1
        assert stored[-1]["suppressed"] == 1 and stored[-1]["key"] != stored[-2]["key"]
    finally:
        store.close()
