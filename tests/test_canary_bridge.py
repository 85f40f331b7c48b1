"""The canary lifecycle driven by a real bridge process and recorded in a real Git remote:
bake, next step, promotion, abort on an SLO alert, a racing release, a restart mid-bake —
with the Slack and GitHub doubles validating every call. And (issue 23 item 3) a Degraded
event rolls back only when the degraded object is the release's own."""

import json
import os
import re
import time

import yaml

import argocd_template
from bridge_harness import NEW_IMAGE
from conftest import fnops
from gitrepo import clone, git, head, show

PIN = "functions/checkout/releases/dev.yaml"
BAKE = 2
# The promise: a bake's commit lands within 5 s after the bake ends (the baker's 0.5 s poll,
# the lane, the mirror fetch, clone, commit and push).
SLACK = 5
NEW2 = "ghcr.io/acme/functions/checkout:sha-2c3d4e5@sha256:" + "c" * 64
RUN = "https://github.com/acme/functions/actions/runs/4242"


def argocd(b, revision, health="Healthy", phase="Succeeded", resources=None, **kw):
    app = argocd_template.application("operation-finished", function="checkout", env="dev", revision=revision,
                                      phase=phase, health=health, **kw)
    if resources is not None:
        app["status"]["resources"] = resources
    return json.loads(argocd_template.render(app))


def with_canary(b, steps="[10, 50]", bake=BAKE):
    """A commit giving checkout a canary in dev; -> (clone, the revision)."""
    work = clone(b.origin, b.tmp / "canary-clone")
    path = os.path.join(work, "functions/checkout/function.yaml")
    with open(path, "a", encoding="utf-8") as f:
        f.write(f"traffic: {{canary: 10, steps: {steps}, bakeTime: {bake}s}}\n")
    git(work, "commit", "--quiet", "-am", "checkout: canary in dev")
    git(work, "push", "--quiet", "origin", "HEAD:main")
    return work, git(b.origin, "rev-parse", "main")


def pin(b, rev="main"):
    return yaml.safe_load(show(b.origin, PIN, rev))


def wait_commit(b, after: str, timeout: float) -> str:
    """The first commit on main after `after` (the bridge's), waiting up to `timeout` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        tip = git(b.origin, "rev-parse", "main")
        if tip != after:
            return git(b.origin, "rev-list", "--reverse", f"{after}..main").split()[0]
        time.sleep(0.05)
    raise AssertionError(f"no commit within {timeout}s\n{b.logs()[-3000:]}")


def traffic_at(b, rev):
    work = clone(b.origin, b.tmp / f"render-{rev[:7]}")
    git(work, "checkout", "--quiet", rev)
    r = fnops("render", "functions/checkout", "--env", "dev", cwd=work)
    assert r.returncode == 0, r.stderr
    svc = next(o for o in yaml.safe_load_all(r.stdout) if o and o["kind"] == "Service"
               and o["apiVersion"] == "serving.knative.dev/v1")
    return svc["spec"]["traffic"], svc["spec"]["template"]["metadata"]["name"]


def audit_kinds(b):
    return [(line["kind"], line.get("detail", "")) for line in b.audit_lines()]


def test_canary_bakes_steps_and_promotes_each_as_a_commit(make_bridge):
    b = make_bridge()
    work, _ = with_canary(b)
    # A release from CI, with its run: the canary of NEW2 against what NEW_IMAGE's pin recorded.
    was = pin(b)
    r = fnops("bump", "checkout", "--env", "dev", "--image", NEW2, "--source-repo", "acme/functions",
              "--source-commit", head(work), "--run-url", RUN, cwd=work)
    assert r.returncode == 0, r.stderr
    rev0 = git(b.origin, "rev-parse", "main")
    first_pin = pin(b)
    assert first_pin["previous"]["revision"] == was["revision"]  # what really ran, as recorded
    stable = first_pin["previous"]["revision"]
    traffic, new_rev = traffic_at(b, rev0)
    assert [(t["revisionName"], t["percent"]) for t in traffic] == [(stable, 90), (new_rev, 10)]

    t0 = time.monotonic()
    assert b.post("/v1/argocd", argocd(b, rev0))[0] == 202
    step1 = wait_commit(b, rev0, BAKE + SLACK)
    took = time.monotonic() - t0
    assert BAKE <= took <= BAKE + SLACK, took  # not before the bake ends; within 5 s after it
    p = pin(b, step1)
    assert p["canary"]["step"] == 50 and p["image"] == NEW2 and p["previous"] == first_pin["previous"]
    assert p["revision"] == first_pin["revision"] == new_rev
    msg = git(b.origin, "log", "-1", "--format=%B", step1)
    assert msg.startswith("fnops: canary of checkout in dev to 50%"), msg
    assert "baked" in msg and "no fast-burn SLO alert" in msg and "move it to 50%" in msg
    assert "Argo CD: https://argocd.example.com/applications/checkout-dev" in msg and f"Run: {RUN}" in msg
    traffic, _ = traffic_at(b, step1)
    assert [(t["revisionName"], t["percent"]) for t in traffic] == [(stable, 50), (new_rev, 50)]

    # Argo CD syncs the step; its bake ends in the promotion.
    t1 = time.monotonic()
    assert b.post("/v1/argocd", argocd(b, step1))[0] == 202
    step2 = wait_commit(b, step1, BAKE + SLACK)
    assert BAKE <= time.monotonic() - t1 <= BAKE + SLACK
    p = pin(b, step2)
    assert p["promoted"] is True and "canary" not in p and p["image"] == NEW2
    assert git(b.origin, "log", "-1", "--format=%s", step2).startswith(
        "fnops: promote the canary of checkout in dev to 100%")
    assert traffic_at(b, step2)[0] == [{"latestRevision": True, "percent": 100}]
    # The promoted release, synced, starts no further bake.
    assert b.post("/v1/argocd", argocd(b, step2))[0] == 202
    time.sleep(BAKE + 1.5)
    assert git(b.origin, "rev-parse", "main") == step2

    b.wait(lambda: b.pending() == 0, what="deliveries")
    ((_, ts), _), = b.slack.top_level().items()
    replies = [r["text"] for r in b.slack.replies(ts)]
    assert any("canary advanced from 10%: 50% to the new revision" in r for r in replies), replies
    assert any("canary promoted from 50%: 100% to the new revision" in r for r in replies), replies
    kinds = [k for k, _ in audit_kinds(b)]
    assert kinds.count("canary-advanced") == 1 and kinds.count("canary-promoted") == 1


def test_a_fast_burn_alert_during_the_bake_commits_the_abort(make_bridge):
    b = make_bridge()
    _, rev0 = with_canary(b, bake=8)
    stable = pin(b)["previous"]
    assert b.post("/v1/argocd", argocd(b, rev0))[0] == 202
    with open(os.path.join(argocd_template.ROOT, "..", "shared", "schemas", "apis",
                           "alertmanager-webhook-firing.json")) as f:
        alert = json.load(f)
    for a in alert["alerts"]:
        a["labels"].update(fnops_function="checkout", fnops_environment="dev", alertname="FnopsErrorBudgetFastBurn",
                           namespace="functions-dev")
    t0 = time.monotonic()
    assert b.post("/v1/alertmanager", alert)[0] == 202
    abort = wait_commit(b, rev0, 8)
    assert time.monotonic() - t0 < 8  # at once, not at the end of the bake
    p = pin(b, abort)
    assert p["image"] == stable["image"] and p["rollbackOf"] == NEW_IMAGE and p["revision"] == stable["revision"]
    msg = git(b.origin, "log", "-1", "--format=%B", abort)
    assert msg.startswith("fnops: roll back checkout in dev") and "aborted at 10%: a fast-burn SLO alert" in msg
    assert "Alert: FnopsErrorBudgetFastBurn (fingerprint" in msg and "Argo CD: https://argocd.example.com" in msg
    traffic, _ = traffic_at(b, abort)
    assert traffic in ([{"latestRevision": True, "percent": 100}],
                       [{"revisionName": stable["revision"], "latestRevision": False, "percent": 100}])
    # The bake's end does not promote what was rolled back.
    time.sleep(max(0.0, t0 + 8 + 1.5 - time.monotonic()))
    assert git(b.origin, "rev-parse", "main") == abort
    b.wait(lambda: b.pending() == 0, what="deliveries")
    kinds = [k for k, _ in audit_kinds(b)]
    assert kinds.count("rolled-back") == 1 and "canary-advanced" not in kinds and "canary-promoted" not in kinds
    ((_, ts), top), = b.slack.top_level().items()
    assert "rolled back" in top["text"]
    assert any("rolled back to" in r["text"] and "canary aborted at 10%: a fast-burn SLO alert fired" in r["text"]
               for r in b.slack.replies(ts))
    # GitHub hears of a rollback: the source commit's status fails, its deployment goes inactive.
    assert [s["state"] for s in b.gh.statuses if s["sha"] == b.src][-1] == "failure"
    assert "inactive" in [s["state"] for s in b.gh.deployment_statuses]


def test_a_racing_release_loses_no_commit_and_is_never_overwritten(make_bridge):
    b = make_bridge()
    work, rev0 = with_canary(b)
    stale = clone(b.origin, b.tmp / "stale-clone")  # a CI job that cloned before the bridge commits
    assert b.post("/v1/argocd", argocd(b, rev0))[0] == 202
    step1 = wait_commit(b, rev0, BAKE + SLACK)
    # The CI job's release lands after the bridge's step: it rebases, both commits stay.
    r = fnops("bump", "checkout", "--env", "dev", "--image", NEW2, "--source-repo", "acme/functions",
              "--source-commit", head(stale), cwd=stale)
    assert r.returncode == 0, r.stderr
    release2 = git(b.origin, "rev-parse", "main")
    assert git(b.origin, "merge-base", "--is-ancestor", step1, release2, check=False) == ""
    assert git(b.origin, "rev-list", "--count", f"{rev0}..main") == "2"
    p = pin(b)
    assert p["image"] == NEW2 and p["previous"]["image"] == NEW_IMAGE and "canary" not in p
    # The step's sync (Argo CD reports it late) and its bake end must not move the new release.
    assert b.post("/v1/argocd", argocd(b, step1))[0] == 202
    b.wait(lambda: any(k == "canary-skipped" for k, _ in audit_kinds(b)) and b.pending() == 0,
           timeout=BAKE + SLACK, what="the bake's end, skipped")
    assert git(b.origin, "rev-parse", "main") == release2 and pin(b)["image"] == NEW2
    skipped = [d for k, d in audit_kinds(b) if k == "canary-skipped"]
    assert len(skipped) == 1 and "superseded" in skipped[0], audit_kinds(b)


# Holds the first push to main after the test arms it (removing `hold` is atomic: one pusher
# wins) until the test says `go`, so another push lands first and the held one's ref update
# finds main moved.
HOLD_HOOK = """#!/bin/sh
while read old new ref; do
  if [ "$ref" = refs/heads/main ] && rm hold 2>/dev/null; then
    : > held
    i=0
    while [ ! -e go ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
  fi
done
"""


def test_the_bridge_losing_the_push_race_redoes_its_step_on_the_new_tip(make_bridge):
    b = make_bridge()
    _, rev0 = with_canary(b)
    hook = os.path.join(b.origin, "hooks", "pre-receive")
    with open(hook, "w", encoding="utf-8") as f:
        f.write(HOLD_HOOK)
    os.chmod(hook, 0o755)
    other = clone(b.origin, b.tmp / "hello-clone")  # a CI job releasing another function
    open(os.path.join(b.origin, "hold"), "w").close()
    assert b.post("/v1/argocd", argocd(b, rev0))[0] == 202
    b.wait(lambda: os.path.exists(os.path.join(b.origin, "held")), timeout=BAKE + SLACK,
           what="the bridge's step push, held")
    hello = "ghcr.io/acme/functions/hello:sha-2c3d4e5@sha256:" + "d" * 64
    r = fnops("bump", "hello", "--env", "dev", "--image", hello, "--source-repo", "acme/functions",
              "--source-commit", head(other), cwd=other)
    assert r.returncode == 0, r.stderr
    open(os.path.join(b.origin, "go"), "w").close()
    # The held push fails on the moved ref; the bridge redoes its step on the new tip.
    released = git(b.origin, "rev-list", "--reverse", f"{rev0}..main").split()
    b.wait(lambda: len(git(b.origin, "rev-list", f"{rev0}..main").split()) == 2, timeout=SLACK + 5,
           what="the bridge's step after the hello release")
    first, step = git(b.origin, "rev-list", "--reverse", f"{rev0}..main").split()
    assert released == [first] and git(b.origin, "log", "-1", "--format=%s", first).startswith("fnops: release hello to dev")
    assert git(b.origin, "log", "-1", "--format=%s", step).startswith("fnops: canary of checkout in dev to 50%")
    assert pin(b, step)["canary"]["step"] == 50 and pin(b, step)["image"] == NEW_IMAGE
    hello_pin = yaml.safe_load(show(b.origin, "functions/hello/releases/dev.yaml", step))
    assert hello_pin["image"] == hello  # the release the bridge raced is kept under its step
    b.wait(lambda: b.pending() == 0, what="deliveries")
    assert [k for k, _ in audit_kinds(b)].count("canary-advanced") == 1


def test_a_bake_that_ends_while_the_bridge_is_down_acts_on_start(make_bridge):
    bake = 8  # long enough that the deployed event's deliveries end well inside it
    b = make_bridge(extra={"github": {"minWriteInterval": "0s"}})
    _, rev0 = with_canary(b, bake=bake)
    t_post = time.monotonic()
    assert b.post("/v1/argocd", argocd(b, rev0))[0] == 202
    b.wait(lambda: b.pending() == 0, what="the deployed event to start the bake")
    assert git(b.origin, "rev-parse", "main") == rev0, "the bake ended before the kill"
    b.kill9()
    time.sleep(max(0.0, t_post + bake + 1 - time.monotonic()))
    assert git(b.origin, "rev-parse", "main") == rev0
    b.start()
    t0 = time.monotonic()
    step1 = wait_commit(b, rev0, bake + SLACK)
    # Sooner than a bake started afresh could end: the stored timer was kept across the kill.
    assert time.monotonic() - t0 < bake
    assert pin(b, step1)["canary"]["step"] == 50
    msg = git(b.origin, "log", "-1", "--format=%B", step1)
    assert int(re.search(r"baked (\d+)s", msg).group(1)) >= bake, msg


# The function's own Service, healthy: beside it, another resource of the app is Degraded.
HEALTHY_SVC = {"group": "serving.knative.dev", "kind": "Service", "name": "checkout", "namespace": "functions-dev",
               "status": "Synced", "version": "v1", "health": {"status": "Healthy"}}


def degraded_resource(group, kind, name, message="", namespace="functions-dev"):
    return {"group": group, "kind": kind, "name": name, "namespace": namespace, "status": "Synced", "version": "v1",
            "health": {"status": "Degraded", **({"message": message} if message else {})}}


def test_degraded_rolls_back_only_for_the_release_own_objects(make_bridge):
    b = make_bridge()
    rev = b.revision
    ran = pin(b)["revision"]
    not_ours = {
        "scaledobject": [HEALTHY_SVC, degraded_resource("keda.sh", "ScaledObject", "checkout", "fallback active")],
        "other-fn": [HEALTHY_SVC, degraded_resource("serving.knative.dev", "Service", "payments")],
        "other-ns": [HEALTHY_SVC, degraded_resource("serving.knative.dev", "Service", "checkout",
                                                    namespace="functions-prod")],
        "old-revision": [HEALTHY_SVC, degraded_resource("serving.knative.dev", "Revision", "checkout-0badc0de")],
    }
    for i, (name, resources) in enumerate(not_ours.items()):
        body = argocd(b, rev, health="Degraded", resources=resources, at=f"2026-11-22T10:0{i}:00Z")
        assert b.post("/v1/argocd", body)[0] == 202, name
    b.wait(lambda: b.pending() == 0 and len([k for k, _ in audit_kinds(b) if k == "rollback-skipped"]) == 4,
           what="four reported decisions")
    assert git(b.origin, "rev-parse", "main") == rev  # nothing rolled back
    reasons = [d for k, d in audit_kinds(b) if k == "rollback-skipped"]
    assert all("is not the function's workload" in r for r in reasons), reasons
    assert "ScaledObject checkout" in reasons[0] and "Service payments" in reasons[1]
    # The release's own revision (the one its pin records) degraded: rolled back.
    body = argocd(b, rev, health="Degraded", at="2026-11-22T10:06:00Z",
                  resources=[HEALTHY_SVC, degraded_resource("serving.knative.dev", "Revision", ran, "crash loop")])
    assert b.post("/v1/argocd", body)[0] == 202
    b.wait(lambda: any(k == "rolled-back" for k, _ in audit_kinds(b)), what="the rollback")
    assert pin(b)["rollbackOf"] == NEW_IMAGE


def test_a_degraded_release_during_the_bake_commits_the_abort_and_a_degraded_neighbour_does_not(make_bridge):
    bake = 8
    b = make_bridge()
    _, rev0 = with_canary(b, bake=bake)
    stable, new_rev = pin(b)["previous"], pin(b)["revision"]
    t0 = time.monotonic()
    assert b.post("/v1/argocd", argocd(b, rev0))[0] == 202  # deployed and healthy: the bake starts
    # A ScaledObject in fallback is not the release: the canary keeps baking.
    neighbour = [HEALTHY_SVC, degraded_resource("keda.sh", "ScaledObject", "checkout", "fallback active")]
    assert b.post("/v1/argocd", argocd(b, rev0, health="Degraded", resources=neighbour,
                                       at="2026-11-22T10:01:00Z"))[0] == 202
    b.wait(lambda: any(k == "canary-skipped" for k, _ in audit_kinds(b)), timeout=bake,
           what="the neighbour's Degraded judged")
    assert git(b.origin, "rev-parse", "main") == rev0
    # The new revision itself crash-loops: the abort is committed at once, not at the bake's end.
    own = [HEALTHY_SVC, degraded_resource("serving.knative.dev", "Revision", new_rev, "crash loop")]
    assert b.post("/v1/argocd", argocd(b, rev0, health="Degraded", resources=own,
                                       at="2026-11-22T10:02:00Z"))[0] == 202
    abort = wait_commit(b, rev0, bake)
    assert time.monotonic() - t0 < bake
    p = pin(b, abort)
    assert p["image"] == stable["image"] and p["rollbackOf"] == NEW_IMAGE and p["revision"] == stable["revision"]
    msg = git(b.origin, "log", "-1", "--format=%B", abort)
    assert msg.startswith("fnops: roll back checkout in dev") and \
        "aborted at 10%: the release's workload is Degraded during its bake" in msg, msg
    time.sleep(max(0.0, t0 + bake + 1.5 - time.monotonic()))  # the bake's end promotes nothing
    b.wait(lambda: b.pending() == 0, what="deliveries")
    assert git(b.origin, "rev-parse", "main") == abort
    kinds = [k for k, _ in audit_kinds(b)]
    assert kinds.count("rolled-back") == 1 and "canary-advanced" not in kinds and "canary-promoted" not in kinds
    skipped = [d for k, d in audit_kinds(b) if k == "canary-skipped"]
    assert any("ScaledObject checkout" in d for d in skipped), skipped


def test_a_pull_request_environment_gets_the_promotion_as_a_pull_request(make_bridge):
    """checkout's prod overlay: `traffic: {canary: 10}`, `rollback: pr`."""
    b = make_bridge()
    work = clone(b.origin, b.tmp / "prod-clone")
    path = os.path.join(work, "functions/checkout/function.yaml")
    with open(path, encoding="utf-8") as f:
        text = f.read()
    assert "    traffic: {canary: 10}\n" in text
    with open(path, "w", encoding="utf-8") as f:
        f.write(text.replace("    traffic: {canary: 10}\n", f"    traffic: {{canary: 10, bakeTime: {BAKE}s}}\n"))
    git(work, "commit", "--quiet", "-am", "checkout: a short bake in prod")
    git(work, "push", "--quiet", "origin", "HEAD:main")
    rev = git(b.origin, "rev-parse", "main")
    body = argocd_template.application("operation-finished", function="checkout", env="prod", revision=rev,
                                       phase="Succeeded", health="Healthy")
    assert b.post("/v1/argocd", json.loads(argocd_template.render(body)))[0] == 202
    b.wait(lambda: len(b.gh.pulls) == 1, timeout=BAKE + 10, what="the promotion's pull request")
    (pr,) = b.gh.pulls
    assert pr["head"]["ref"] == "fnops/canary/prod/checkout"
    assert pr["title"].startswith("fnops: promote the canary of checkout in prod to 100%"), pr["title"]
    assert git(b.origin, "rev-parse", "main") == rev  # nothing pushed to main
    proposed = yaml.safe_load(show(b.origin, "functions/checkout/releases/prod.yaml", "fnops/canary/prod/checkout"))
    assert proposed["promoted"] is True
    b.wait(lambda: any(k == "canary-proposed" for k, _ in audit_kinds(b)), what="the report")
