"""The Argo CD → bridge path with Argo CD's own notification code (tests/argocd-notifications).

Application states as Argo CD 2.14, 3.0 and 3.2+ persist them (tests/argocd_states.py, from
tests/argocd-samples) go through the shipped triggers (expr-lang, in notifications-engine)
and templates (text/template + sprig), and what they send goes into the bridge: each event is
the right kind for the right release, a release rolls back once where it should and nowhere
else, and events sent while the bridge is down arrive after it returns.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import time

import jsonschema
import pytest
import yaml

import argocd_engine
import argocd_states as S
import argocd_template
import schemas
from bridge_harness import NEW_IMAGE, TOKEN, Bridge
from gitrepo import clone, git, show
from fnops.bridge import catchup
from fnops.bridge.events import from_argocd

T0 = dt.datetime(2026, 11, 22, 12, 0, tzinfo=dt.timezone.utc)
STDERR = "functions/checkout/function.yaml:4:3: scale.max: 0 is out of range; allowed 1 to 1000"


def at(seconds: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


def rev(n: int) -> str:
    return f"{n:x}" * 40 if n < 16 else f"{n:040x}"


def img(n: int, fn: str = "checkout") -> str:
    return f"ghcr.io/acme/functions/{fn}:sha-{str(n) * 7}@sha256:" + f"{n:x}" * 64


@pytest.fixture(scope="session")
def engine(tmp_path_factory):
    return argocd_engine.build(tmp_path_factory.mktemp("argocd-notifications-bin"))


def application_schema():
    return jsonschema.Draft7Validator(schemas.crd_schemas()[("argoproj.io/v1alpha1", "Application")])


# --- one Application through a release history ---------------------------------------------

def history(version: str) -> tuple[list, list]:
    """A function's Application through six releases, as `version` persists each step:
    [(step, Application, now)] and the sends the controller makes, [(step, kind, revision)]."""
    a = S.App(version, revision=rev(1), image=img(1), at=T0)
    steps = []

    def step(name, state, seconds):
        steps.append((name, state, S.ts(at(seconds))))

    step("base", a.state(), 0)
    # R2 is good: health changes after its sync, so only then is it deployed.
    step("r2-running", a.sync_started(rev(2), at(10)), 10)
    step("r2-applied", a.sync_applied(at(13), img(2)), 13)  # not refreshed yet: skipped
    step("r2-stale", a.refreshed(at(14), "Healthy"), 14)  # R1's health, evaluated before R2 took
    step("r2-progressing", a.refreshed(at(15), "Progressing"), 15)
    step("r2-healthy", a.refreshed(at(45), "Healthy"), 45)
    # R3 is bad.
    step("r3-running", a.sync_started(rev(3), at(100)), 100)
    step("r3-applied", a.sync_applied(at(103), img(3)), 103)
    step("r3-progressing", a.refreshed(at(104), "Progressing"), 104)
    step("r3-degraded", a.refreshed(at(160), "Degraded", message="Revision checkout-00003 failed: CrashLoopBackOff"), 160)
    # R4 is the fix, pushed while R3 is degraded: nothing is pinned on it until its health moves.
    step("r4-running", a.sync_started(rev(4), at(200)), 200)
    step("r4-applied", a.sync_applied(at(203), img(4)), 203)
    step("r4-stale", a.refreshed(at(204), "Degraded"), 204)
    step("r4-stale-2m", a.state(), 204 + 130)  # still degraded after the grace: reported, not R4's doing
    step("r4-progressing", a.refreshed(at(400), "Progressing"), 400)
    step("r4-healthy", a.refreshed(at(430), "Healthy"), 430)
    # Three weeks later a node goes away.
    weeks = 21 * 86400
    step("r4-node-loss", a.refreshed(at(weeks), "Degraded", message="Revision checkout-00004: Unschedulable"), weeks)
    step("r4-recovered", a.refreshed(at(weeks + 300), "Healthy"), weeks + 300)
    # R5 fails to apply, retried twice (the ApplicationSet's retry) before it is Failed.
    t = weeks + 1000
    step("r5-running", a.sync_started(rev(5), at(t)), t)
    step("r5-attempt-1", a.attempt_failed(at(t + 3), "one or more objects failed to apply", retries_left=True), t + 3)
    step("r5-retry-1", a.retry_started(), t + 8)
    step("r5-attempt-2", a.attempt_failed(at(t + 10), "one or more objects failed to apply", retries_left=True), t + 10)
    step("r5-retry-2", a.retry_started(), t + 20)
    step("r5-failed", a.attempt_failed(at(t + 30), "one or more objects failed to apply", retries_left=False), t + 30)
    step("r5-refreshed", a.refreshed(at(t + 31), "Healthy"), t + 31)
    # R6 does not render: no operation starts.
    step("r6-render-failed", a.render_failed(at(t + 600), STDERR), t + 600)
    step("r6-render-failed-again", a.render_failed(at(t + 780), STDERR), t + 780)
    expected = [("r2-running", "syncing", rev(2)), ("r2-healthy", "deployed", rev(2)),
                ("r3-running", "syncing", rev(3)), ("r3-degraded", "degraded", rev(3)),
                ("r4-running", "syncing", rev(4)), ("r4-stale-2m", "degraded", rev(4)),
                ("r4-healthy", "deployed", rev(4)), ("r4-node-loss", "degraded", rev(4)),
                ("r4-recovered", "deployed", rev(4)),  # the same event as r4-healthy: the bridge folds it
                ("r5-running", "syncing", rev(5)), ("r5-refreshed", "sync-failed", rev(5)),
                ("r6-render-failed", "render-failed", "")]
    return steps, expected


def test_every_state_the_models_persist_is_a_valid_application():
    v = application_schema()
    for version in S.VERSIONS:
        steps, _ = history(version)
        for name, state, _ in steps:
            errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in v.iter_errors(state)]
            assert errors == [], f"{version} {name}"


@pytest.mark.parametrize("version", S.VERSIONS)
def test_each_event_is_sent_once_for_the_release_it_reports(engine, version):
    steps, expected = history(version)
    results = argocd_engine.evaluate(engine[version], steps)
    skipped = {r["id"] for r in results if r.get("skipped")}
    assert skipped == {"r2-applied", "r3-applied", "r4-applied", "r5-failed"}
    sends = argocd_engine.sent(results, primed={"fnops-on-deployed"})
    events = [(step, from_argocd(body)) for step, body in sends]
    assert [(step, e["kind"], e["revision"]) for step, e in events] == expected
    keys = [e["key"] for _, e in events]
    assert len(set(keys)) == len(keys) - 1 and keys[6] == keys[8]  # r4's recovery repeats its deployed event
    by_step = dict(events)
    # Tied to the release: the operation's start or end, and health judged after the sync.
    assert by_step["r2-running"]["startedAt"] == S.ts(at(10)) and by_step["r2-healthy"]["finishedAt"] == S.ts(at(13))
    assert by_step["r3-degraded"]["healthSince"] == S.ts(at(160)) >= by_step["r3-degraded"]["finishedAt"]
    assert by_step["r4-stale-2m"]["healthSince"] < by_step["r4-stale-2m"]["finishedAt"]  # R3's, not R4's
    assert by_step["r5-refreshed"]["message"].endswith("(retried 2 times).")
    assert by_step["r6-render-failed"]["message"] == STDERR  # the CMP's one line, out of Argo CD's wrapping
    # F1: no sync of this history is Argo CD's rollback, whatever the version puts in the operation.
    assert not any(e["rollback"] for _, e in events)
    inline = version == "2.14"
    assert by_step["r3-degraded"]["resourceHealth"] == ("inline" if inline else "appTree")
    assert bool(by_step["r3-degraded"]["degradedResources"]) is inline
    # The Degraded object's own message, where the version keeps it in the Application.
    assert ("CrashLoopBackOff" in by_step["r3-degraded"]["message"]) is inline


@pytest.mark.parametrize("version", S.VERSIONS)
def test_python_template_and_catch_up_say_what_the_engine_says(engine, version):
    """The tests' template evaluator and the bridge's catch-up (which mirrors the triggers and
    templates) agree with the engine on every state: what fires, and the body it sends."""
    steps, _ = history(version)
    results = argocd_engine.evaluate(engine[version], steps)
    for (name, state, now), r in zip(steps, results):
        assert bool(r.get("skipped")) == catchup.unreconciled(state), name
        if r.get("skipped"):
            continue
        events = {json.loads(s["body"])["event"] for s in r["sends"]}
        assert set(catchup.triggered(state, catchup.ev.epoch(now))) == events, name
        for s in r["sends"]:
            body = json.loads(s["body"])
            assert (s["method"], s["path"]) == ("POST", "/v1/argocd")
            assert catchup.body_of(state, body["event"]) == body, name
            assert json.loads(argocd_template.render(state, body["event"])) == body, name


def test_argo_cds_own_rollback_is_told_apart_on_every_version(engine):
    """Argo CD 3.2 started to set operation.sync.source on every sync (F1); what tells a
    rollback is a user's sync of a revision the history holds as an earlier deployment."""
    for version in S.VERSIONS:
        a = S.App(version, "hello", "prod", revision=rev(1), image=img(1, "hello"), at=T0, auto_sync=False)
        steps = [("base", a.state(), S.ts(at(0)))]
        steps.append(("r2-sync", a.sync_started(rev(2), at(10), user="alice@example.com"), S.ts(at(10))))
        a.sync_applied(at(12), img(2, "hello"))
        a.refreshed(at(13), "Progressing")
        steps.append(("r2-healthy", a.refreshed(at(40), "Healthy"), S.ts(at(40))))
        steps.append(("r2-resync", a.sync_started(rev(2), at(100), user="alice@example.com"), S.ts(at(100))))
        a.sync_applied(at(102), img(2, "hello"))
        steps.append(("r2-resynced", a.refreshed(at(103), "Progressing"), S.ts(at(103))))
        back_to = a.obj["status"]["history"][-3]["id"]  # the deployment before R2 (R1)
        steps.append(("rollback", a.rollback_started(back_to, at(200)), S.ts(at(200))))
        a.sync_applied(at(202), img(1, "hello"))
        steps.append(("rolled-back", a.refreshed(at(230), "Degraded", message="x"), S.ts(at(230))))
        results = argocd_engine.evaluate(engine[version], steps)
        events = [(step, from_argocd(body)) for step, body in argocd_engine.sent(results, {"fnops-on-deployed"})]
        assert [(s, e["kind"], e["rollback"], e["autoSync"]) for s, e in events] == [
            ("r2-sync", "syncing", False, False), ("r2-healthy", "deployed", False, False),
            ("r2-resync", "syncing", False, False),
            ("rollback", "syncing", True, False), ("rolled-back", "degraded", True, False)], version


# --- into the bridge -------------------------------------------------------------------------

def _bump(work, fn, env, n, src):
    r = subprocess.run(["fnops", "bump", fn, "--env", env, "--image", img(n, fn), "--source-repo", "acme/functions",
                        "--source-commit", src], cwd=work, capture_output=True, text=True,
                       env={**os.environ, "SOURCE_DATE_EPOCH": str(int(time.time()))})
    assert r.returncode == 0, r.stderr
    git(work, "pull", "--quiet", "--rebase", "origin", "main")
    return git(work, "rev-parse", "HEAD")


class Subjects:
    """Releases in the bridge's GitOps repo, one per scenario, each with a previous release."""

    def __init__(self, b: Bridge, tmp_path):
        self.b = b
        work = clone(b.origin, tmp_path / "subjects")
        for fn in ("hello", "orders-consumer", "order-events", "thumbnail-worker", "nightly-report"):
            with open(os.path.join(work, "functions", fn, "function.yaml"), "a") as f:
                f.write("rollback: auto\n")
        git(work, "commit", "--quiet", "-am", "rollback: auto")
        git(work, "push", "--quiet", "origin", "HEAD:main")
        self.before_order_events_prod = git(work, "rev-parse", "HEAD")
        src = b.src
        for n, (fn, env) in enumerate((("hello", "dev"), ("orders-consumer", "dev"), ("order-events", "dev"),
                                       ("hello", "prod"), ("order-events", "prod"), ("thumbnail-worker", "dev")), 5):
            _bump(work, fn, env, n, src)
        self.tip = git(b.origin, "rev-parse", "main")

    def pin(self, fn, env, revision=None):
        return yaml.safe_load(show(self.b.origin, f"functions/{fn}/releases/{env}.yaml", revision or self.tip))


def scenario_states(version: str, s: Subjects) -> list[tuple[str, dict, str]]:
    """What Argo CD persists for each subject, in time order (several apps interleaved)."""
    tip, out = s.tip, []

    def app(fn, env, **kw):
        pin = s.pin(fn, env)
        prev = (pin.get("previous") or {}).get("image") or pin["image"]
        return S.App(version, fn, env, revision=s.before_order_events_prod, image=prev, at=T0, **kw)

    def add(name, state, seconds):
        out.append((name, state, S.ts(at(seconds))))

    # checkout dev: a bad release, degraded within the bake time → rolled back.
    a = app("checkout", "dev", persist_health=True)
    add("checkout-dev-running", a.sync_started(tip, at(10)), 10)
    a.sync_applied(at(12), s.pin("checkout", "dev")["image"])
    add("checkout-dev-progressing", a.refreshed(at(13), "Progressing"), 13)
    add("checkout-dev-degraded", a.refreshed(at(70), "Degraded", message="Revision checkout-00002: CrashLoopBackOff"), 70)
    # hello dev: a good release that degrades three weeks later → reported, not rolled back.
    h = app("hello", "dev", persist_health=True)
    add("hello-dev-running", h.sync_started(tip, at(20)), 20)
    h.sync_applied(at(22), s.pin("hello", "dev")["image"])
    add("hello-dev-progressing", h.refreshed(at(23), "Progressing"), 23)
    add("hello-dev-healthy", h.refreshed(at(50), "Healthy"), 50)
    add("hello-dev-node-loss", h.refreshed(at(21 * 86400), "Degraded", message="Unschedulable"), 21 * 86400)
    # orders-consumer dev: its KafkaSource degrades (the brokers are down), its Service is fine.
    o = app("orders-consumer", "dev", persist_health=True).add_resource("sources.knative.dev", "KafkaSource",
                                                                         "orders-consumer-kafka", "v1beta1")
    add("orders-consumer-dev-running", o.sync_started(tip, at(30)), 30)
    o.sync_applied(at(32), s.pin("orders-consumer", "dev")["image"])
    add("orders-consumer-dev-degraded", o.refreshed(at(60), "Degraded", message="KafkaSource not ready",
                                                    kind="KafkaSource"), 60)
    # order-events dev: degraded before its release synced, and still after: not the release's doing.
    e = app("order-events", "dev", persist_health=True)
    e.refreshed(at(5), "Degraded", message="old")  # already told, before this test's window
    add("order-events-dev-running", e.sync_started(tip, at(40)), 40)
    e.sync_applied(at(42), s.pin("order-events", "dev")["image"])
    add("order-events-dev-stale", e.refreshed(at(43), "Degraded"), 43)
    add("order-events-dev-2m", e.state(), 43 + 130)
    # hello prod: manual sync by a person; degraded within the bake time → a rollback commit
    # that waits for the next sync.
    p = app("hello", "prod", persist_health=True, auto_sync=False)
    add("hello-prod-running", p.sync_started(tip, at(100), user="alice@example.com"), 100)
    p.sync_applied(at(102), s.pin("hello", "prod")["image"])
    add("hello-prod-degraded", p.refreshed(at(160), "Degraded", message="Revision hello-00003 failed"), 160)
    # order-events prod: someone rolled back in Argo CD to the deployment before; it degrades.
    r = app("order-events", "prod", persist_health=True, auto_sync=False)
    r.sync_started(tip, at(200), user="alice@example.com")
    r.sync_applied(at(202), s.pin("order-events", "prod")["image"])
    r.refreshed(at(230), "Healthy")
    add("order-events-prod-rollback", r.rollback_started(r.obj["status"]["history"][-2]["id"], at(300)), 300)
    r.sync_applied(at(302), s.pin("order-events", "prod", s.before_order_events_prod)["image"])
    add("order-events-prod-degraded", r.refreshed(at(330), "Degraded", message="x"), 330)
    # thumbnail-worker dev: resource health not kept in the Application (3.x's default).
    t = app("thumbnail-worker", "dev", persist_health=False)
    add("thumbnail-worker-dev-running", t.sync_started(tip, at(400)), 400)
    t.sync_applied(at(402), s.pin("thumbnail-worker", "dev")["image"])
    add("thumbnail-worker-dev-degraded", t.refreshed(at(440), "Degraded"), 440)
    # nightly-report dev: the branch does not render.
    n = app("nightly-report", "dev")
    add("nightly-report-dev-render-failed", n.render_failed(at(500), "functions/nightly-report/function.yaml:2:10: "
                                                                     "runtime: 'python2' is not one of …"), 500)
    return sorted(out, key=lambda x: x[2])


def audit_of(b, fn, env):
    return [line for line in b.audit_lines() if (line["function"], line["environment"]) == (fn, env)]


@pytest.mark.parametrize("version", S.VERSIONS)
def test_the_bridge_rolls_back_once_where_due_and_nowhere_else(engine, tmp_path, version):
    b = Bridge(tmp_path)
    s = Subjects(b, tmp_path)
    b.start()
    try:
        states = scenario_states(version, s)
        # Each app's sends follow its own states (the controller keeps a notified state per app).
        by_app: dict = {}
        for name, state, now in states:
            by_app.setdefault(state["metadata"]["name"], []).append((name, state, now))
        sends = []
        for app_states in by_app.values():
            sends += argocd_engine.sent(argocd_engine.evaluate(engine[version], app_states), {"fnops-on-deployed"})
        order = {name: i for i, (name, _, _) in enumerate(states)}
        for name, body in sorted(sends, key=lambda x: order[x[0]]):
            assert b.post("/v1/argocd", body)[0] == 202, name
        # Argo CD sends again until accepted: a repeat changes nothing.
        assert b.post("/v1/argocd", sends[-1][1])[0] == 200
        b.wait(lambda: b.pending() == 0 and sum(1 for x in b.audit_lines() if x["kind"].startswith("roll")) >= 7,
               timeout=90, what="every decision")
        kinds = {(fn, env): [x["kind"] for x in audit_of(b, fn, env)] for fn, env in
                 (("checkout", "dev"), ("hello", "dev"), ("orders-consumer", "dev"), ("order-events", "dev"),
                  ("hello", "prod"), ("order-events", "prod"), ("thumbnail-worker", "dev"), ("nightly-report", "dev"))}
        assert kinds == {
            ("checkout", "dev"): ["syncing", "degraded", "rolled-back"],
            ("hello", "dev"): ["syncing", "deployed", "degraded", "rollback-skipped"],
            ("orders-consumer", "dev"): ["syncing", "degraded", "rollback-skipped"],
            ("order-events", "dev"): ["syncing", "degraded", "rollback-skipped"],
            ("hello", "prod"): ["syncing", "degraded", "rolled-back"],
            ("order-events", "prod"): ["syncing", "degraded", "rollback-skipped"],
            ("thumbnail-worker", "dev"): ["syncing", "degraded", "rollback-skipped"],
            ("nightly-report", "dev"): ["render-failed"],
        }, version
        # The right release: every line names the pin at the revision its event reports.
        for (fn, env) in kinds:
            for line in audit_of(b, fn, env):
                if line["kind"] in ("rolled-back", "rollback-skipped"):
                    continue
                want = s.pin(fn, env, line["revision"])["image"]
                assert line["image"] == want, (fn, env, line)
        reasons = {(x["function"], x["environment"]): x["detail"] for x in b.audit_lines()
                   if x["kind"] == "rollback-skipped"}
        assert "past the bake time" in reasons[("hello", "dev")]
        assert "not the function's workload" in reasons[("orders-consumer", "dev")]
        assert "before this sync finished" in reasons[("order-events", "dev")]
        assert "itself a rollback" in reasons[("order-events", "prod")]
        assert "resourceHealthSource: appTree" in reasons[("thumbnail-worker", "dev")]
        # Exactly two rollback commits; prod's says it waits for a sync.
        log = sorted(git(b.origin, "log", "--format=%s", f"{s.tip}..main").splitlines())
        assert len(log) == 2 and log[0].startswith("fnops: roll back checkout in dev"), log
        assert log[1].startswith("fnops: roll back hello in prod"), log
        assert s.pin("checkout", "dev", "main")["rollbackOf"] == NEW_IMAGE
        assert s.pin("hello", "prod", "main")["rollbackOf"] == s.pin("hello", "prod")["image"]
        prod = next(x for x in audit_of(b, "hello", "prod") if x["kind"] == "rolled-back")
        assert "prod does not sync automatically" in prod["detail"] and "hello-prod" in prod["detail"]
        # A render failure reaches Slack and the source commit's status, with fnops' own line.
        (render,) = audit_of(b, "nightly-report", "dev")
        assert "runtime: 'python2' is not one of" in render["detail"]
        failed = [st for st in b.gh.statuses if st["context"] == "fnops/dev/nightly-report"]
        assert [st["state"] for st in failed] == ["failure"] and failed[0]["sha"] == s.pin("nightly-report", "dev")["source"]["commit"]
        assert any("render failed" in m["text"] for m in b.slack.messages.values())
    finally:
        b.stop()
    assert b.slack.violations == [] and b.gh.violations == []


# --- nothing is lost while the bridge is away ------------------------------------------------

KUBE_TOKEN = "kube-sa-token-" + "k" * 20
DOWN = {("checkout", "dev"): "fnops-on-deployed", ("hello", "dev"): "fnops-on-health-degraded",
        ("nightly-report", "dev"): "fnops-on-render-failed", ("order-events", "dev"): "fnops-on-sync-failed"}


@pytest.mark.parametrize("catch_up", [True, False], ids=["with-catch-up", "notification-controller-only"])
def test_events_sent_while_the_bridge_is_down_arrive_after_it_returns(engine, tmp_path, catch_up):
    """Argo CD's notification controller (notifications-engine's, with the shipped config)
    sends to the bridge while it is stopped: a release goes through, another degrades, a
    third fails to sync, a fourth fails to render. When the bridge is back, the controller
    sends again every event whose state still holds, and the catch-up reads the rest — the
    `syncing` of an operation that finished meanwhile — from the Application objects. Without
    the catch-up exactly that one is missing: where README's guarantee starts."""
    from conftest import stop_process
    from kube_api_double import KubeApiDouble

    version = "3.2"
    with KubeApiDouble(KUBE_TOKEN) as kube:
        token_file = tmp_path / "serviceaccount-token"
        token_file.write_text(KUBE_TOKEN)
        extra = {"argocd": {"catchUp": {"kubernetes": {"url": kube.url, "tokenFile": str(token_file)},
                                        "interval": "30s", "maxAge": "24h"}}} if catch_up else None
        b = Bridge(tmp_path, extra=extra)
        s = Subjects(b, tmp_path)
        base = dt.datetime.now(dt.timezone.utc).replace(microsecond=0) - dt.timedelta(minutes=5)
        apps = {}
        for fn, env in DOWN:
            pin = s.pin(fn, env, s.before_order_events_prod)
            apps[(fn, env)] = S.App(version, fn, env, revision=s.before_order_events_prod, image=pin["image"],
                                    at=base - dt.timedelta(hours=1), persist_health=True)
            kube.put(apps[(fn, env)].state())
        b.start()
        ctl = argocd_engine.Controller(engine[version], b.url, TOKEN, resync="1s", retry_wait="50ms",
                                       log_path=tmp_path / "notification-controller.log")
        try:
            def feed(state):
                kube.put(state)
                ctl.apply(state)

            for a in apps.values():
                feed(a.state())
            b.wait(lambda: b.pending() == 0 and sum(x["kind"] == "deployed" for x in b.audit_lines()) == 4,
                   what="the deployed releases the controller finds at its start")
            stop_process(b.proc)  # the bridge goes away (a rollout, a crash, a node drain)
            b.log.close()
            t = lambda seconds: base + dt.timedelta(seconds=seconds)  # noqa: E731
            c, h, n, o = (apps[k] for k in DOWN)
            feed(c.sync_started(s.tip, t(10)))
            feed(h.sync_started(s.tip, t(15)))
            feed(c.sync_applied(t(12), s.pin("checkout", "dev")["image"]))
            feed(c.refreshed(t(13), "Progressing"))
            feed(h.sync_applied(t(17), s.pin("hello", "dev")["image"]))
            feed(h.refreshed(t(18), "Progressing"))
            feed(n.render_failed(t(20), "functions/nightly-report/function.yaml:2:10: runtime: 'python2' is not one of …"))
            feed(o.sync_started(s.tip, t(25)))
            feed(o.attempt_failed(t(28), "one or more objects failed to apply", retries_left=True))
            feed(o.retry_started())
            feed(c.refreshed(t(40), "Healthy"))
            feed(o.attempt_failed(t(45), "one or more objects failed to apply", retries_left=False))
            feed(o.refreshed(t(46), "Healthy"))
            feed(h.refreshed(t(50), "Degraded", message="Revision hello-00002 failed: CrashLoopBackOff"))
            # Every one of them was sent, and failed.
            failing = set()
            deadline = time.monotonic() + 60
            while failing != {f"argocd/{fn}-{env}" for fn, env in DOWN} and time.monotonic() < deadline:
                e = ctl.expect(lambda e: e["event"] == "processed" and e["errors"], 60)
                failing.add(e["app"])
            assert failing == {f"argocd/{fn}-{env}" for fn, env in DOWN}
            back = len(ctl.seen)
            b.start()
            # The notification controller itself sends each again, and now it is accepted.
            for (fn, env), trigger in DOWN.items():
                ctl.expect(lambda e, a=f"argocd/{fn}-{env}", tr=trigger: e["event"] == "processed"
                           and e["app"] == a and tr in e["delivered"], 60, since=back)
            b.wait(lambda: b.pending() == 0 and sum(x["kind"].startswith("roll") for x in b.audit_lines()) == 2,
                   timeout=60, what="the events and their rollbacks")
            kinds = {k: [x["kind"] for x in audit_of(b, *k)] for k in DOWN}
            before = ["syncing", "deployed"] if catch_up else ["deployed"]
            during = ["syncing"] if catch_up else []
            assert kinds == {
                ("checkout", "dev"): before + during + ["deployed"],
                ("hello", "dev"): before + during + ["degraded", "rolled-back"],
                ("nightly-report", "dev"): before + ["render-failed"],
                ("order-events", "dev"): before + during + ["sync-failed", "rolled-back"],
            }
            for k in DOWN:
                for line in audit_of(b, *k):
                    if line["kind"] not in ("rolled-back",):
                        assert line["image"] == s.pin(*k, line["revision"])["image"], line
            if catch_up:
                assert kube.violations == [] and kube.requests
                assert all(r["query"]["labelSelector"] == "fnops.dev/function,fnops.dev/environment"
                           for r in kube.requests)
        finally:
            ctl.stop()
            b.stop()
    assert b.slack.violations == [] and b.gh.violations == []


def test_both_expr_lang_versions_judge_every_state_alike(engine):
    """2.14 and 3.0 evaluate triggers with expr v1.16.9, 3.2+ with v1.17.x."""
    for version in S.VERSIONS:
        steps, _ = history(version)
        old, new = ([dict(r, sends=sorted(r["sends"], key=lambda x: x["trigger"]))  # the engine's map order varies
                     for r in argocd_engine.evaluate(engine[v], steps)] for v in ("2.14", "3.2"))
        assert old == new, version
