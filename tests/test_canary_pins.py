"""Pins record what really ran (review F5) and the canary's steps as the renderer reads them:
real `fnops bump` against a bare remote, real `fnops render`, schemas and webhook rules."""

import os

import yaml

import schemas
import webhook_rules
from conftest import fnops
from gitrepo import clone, git, head, make_origin, show

REPO = "ghcr.io/acme/functions/hello"
D = lambda c: "sha256:" + c * 64  # noqa: E731
PIN = "functions/hello/releases/dev.yaml"
ENV = {"SOURCE_DATE_EPOCH": "1795341600"}


def bump(cwd, image):
    r = fnops("bump", "hello", "--env", "dev", "--image", image, "--source-repo", "acme/functions",
              "--source-commit", head(cwd), cwd=cwd, env=ENV)
    assert r.returncode == 0, r.stderr
    git(cwd, "pull", "--quiet", "--rebase", "origin", "main")


def ksvc(folder, cwd=None):
    r = fnops("render", str(folder), "--env", "dev", cwd=cwd)
    assert r.returncode == 0, r.stderr
    objs = [o for o in yaml.safe_load_all(r.stdout) if o]
    for o in objs:
        assert schemas.validate(o) == [], o
    assert webhook_rules.check_all(objs) == []
    return next(o for o in objs if o["kind"] == "Service" and o["apiVersion"] == "serving.knative.dev/v1")


def test_stable_side_is_the_revision_release_one_really_ran(tmp_path):
    origin = make_origin(tmp_path)
    work = clone(origin, tmp_path / "work")
    with open(os.path.join(work, "functions/hello/function.yaml"), "a", encoding="utf-8") as f:
        f.write("traffic: {canary: 10, steps: [10, 50], bakeTime: 2s}\n")
    git(work, "commit", "--quiet", "-am", "hello: canary")
    git(work, "push", "--quiet", "origin", "HEAD:main")
    bump(work, f"{REPO}:sha-1111111@{D('1')}")
    first = ksvc("functions/hello", cwd=work)
    ran = first["spec"]["template"]["metadata"]["name"]
    assert yaml.safe_load(show(origin, PIN))["revision"] == ran  # recorded as rendered

    # Release 2 changes function.yaml and the image together.
    with open(os.path.join(work, "functions/hello/function.yaml"), encoding="utf-8") as f:
        spec = yaml.safe_load(f)
    spec.setdefault("env", {})["GREETING"] = "hej"
    with open(os.path.join(work, "functions/hello/function.yaml"), "w", encoding="utf-8") as f:
        yaml.safe_dump(spec, f)
    git(work, "commit", "--quiet", "-am", "hello: greeting")
    git(work, "push", "--quiet", "origin", "HEAD:main")
    bump(work, f"{REPO}:sha-2222222@{D('2')}")
    pin = yaml.safe_load(show(origin, PIN))
    assert pin["previous"] == {"image": f"{REPO}:sha-1111111@{D('1')}", "revision": ran,
                               "source": pin["previous"]["source"]}
    svc = ksvc("functions/hello", cwd=work)
    new = svc["spec"]["template"]["metadata"]["name"]
    assert new != ran and pin["revision"] == new
    # The old way (old image rendered with the new function.yaml) names a revision that never ran.
    assert svc["spec"]["traffic"] == [
        {"revisionName": ran, "latestRevision": False, "percent": 90, "tag": "stable"},
        {"revisionName": new, "latestRevision": False, "percent": 10, "tag": "candidate"},
    ]

    # A rollback restores the revision that ran, by name, although today's function.yaml
    # would name the restored image's revision differently.
    r = fnops("rollback", "hello", "--env", "dev", cwd=work, env=ENV)
    assert r.returncode == 0, r.stderr
    git(work, "pull", "--quiet", "--rebase", "origin", "main")
    back = yaml.safe_load(show(origin, PIN))
    assert back["revision"] == ran and back["image"] == f"{REPO}:sha-1111111@{D('1')}"
    assert ksvc("functions/hello", cwd=work)["spec"]["traffic"] == [
        {"revisionName": ran, "latestRevision": False, "percent": 100}]


def test_old_pins_without_the_record_keep_working(tmp_path):
    """A pin written before `revision` was recorded: previous.revision is computed as before
    (the pinned image rendered with the function.yaml at hand)."""
    origin = make_origin(tmp_path)
    work = clone(origin, tmp_path / "work")
    assert "revision:" not in show(origin, PIN).split("previous")[0]
    before = ksvc("functions/hello", cwd=work)["spec"]["template"]["metadata"]["name"]
    bump(work, f"{REPO}:sha-3333333@{D('3')}")
    pin = yaml.safe_load(show(origin, PIN))
    assert pin["previous"]["revision"] == before and pin["revision"] != before


def write(tmp_path, spec, pin):
    d = tmp_path / "fn"
    (d / "releases").mkdir(parents=True, exist_ok=True)
    (d / "function.yaml").write_text(spec)
    (d / "releases" / "dev.yaml").write_text(yaml.safe_dump(pin))
    return d


R = "registry.example.com/fns/fn"
CANARY_PIN = {"image": f"{R}:sha-2222222@{D('2')}", "previous": {"image": f"{R}:sha-1111111@{D('1')}",
                                                                  "revision": "fn-0badc0de"}}


def test_the_canary_step_and_the_promotion_are_pin_fields_render_reads(tmp_path):
    spec = "runtime: python3.12\ntraffic: {canary: 10, steps: [10, 50], bakeTime: 2s}\n"
    svc = ksvc(write(tmp_path, spec, CANARY_PIN))
    assert [t["percent"] for t in svc["spec"]["traffic"]] == [90, 10]
    svc = ksvc(write(tmp_path, spec, {**CANARY_PIN, "canary": {"step": 50, "at": "2026-11-22T10:00:00Z"}}))
    assert [(t["revisionName"], t["percent"]) for t in svc["spec"]["traffic"]] == [
        ("fn-0badc0de", 50), (svc["spec"]["template"]["metadata"]["name"], 50)]
    svc = ksvc(write(tmp_path, spec, {**CANARY_PIN, "promoted": True}))
    assert svc["spec"]["traffic"] == [{"latestRevision": True, "percent": 100}]


def test_traffic_steps_and_bake_time_are_checked(tmp_path):
    cases = {
        "traffic: {canary: 10, steps: [10, 5]}": "traffic.steps[1]: 5 does not grow from the step before (10)",
        "traffic: {canary: 10, steps: [20, 50]}": "traffic.steps[0]: 20 is not traffic.canary (10)",
        "traffic: {canary: 10, bakeTime: soon}": "traffic.bakeTime: 'soon' is not a duration",
        "traffic: {bakeTime: 5m}": "traffic.bakeTime: is the canary's bake time, but there is no canary",
        "traffic: {steps: []}": "traffic.steps: expected a non-empty list",
        "traffic: {canary: 10, steps: [10, 100]}": "traffic.steps[1]: 100 is out of range",
    }
    for line, want in cases.items():
        d = write(tmp_path, f"runtime: python3.12\n{line}\n", {"image": f"{R}:sha-1111111@{D('1')}"})
        before = (d / "function.yaml").read_text()
        r = fnops("validate", str(d))
        assert r.returncode == 2, (line, r.stdout, r.stderr)
        out = r.stdout + r.stderr
        assert "function.yaml:2:" in out and want in out, (line, out)
        assert (d / "function.yaml").read_text() == before
    # steps alone make the canary: its first step
    d = write(tmp_path, "runtime: python3.12\ntraffic: {steps: [20, 60]}\n", CANARY_PIN)
    assert [t["percent"] for t in ksvc(d)["spec"]["traffic"]] == [80, 20]


def test_status_shows_the_canary_state_and_time_left(tmp_path):
    import json
    import time

    root = tmp_path / "repo"
    d = root / "functions" / "fn"
    (d / "releases").mkdir(parents=True)
    (d / "function.yaml").write_text("runtime: python3.12\nimage: registry.example.com/fns/fn\n"
                                     "environments: {dev: {}, prod: {}}\n"
                                     "traffic: {canary: 10, steps: [10, 50], bakeTime: 10m}\n")
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 60))
    (d / "releases" / "dev.yaml").write_text(yaml.safe_dump({**CANARY_PIN, "releasedAt": now}))
    (d / "releases" / "prod.yaml").write_text(yaml.safe_dump({**CANARY_PIN, "promoted": True}))
    r = fnops("status", "--output", "json", cwd=str(root))
    assert r.returncode == 0, r.stderr
    rows = {row["environment"]: row for row in json.loads(r.stdout)}
    dev = rows["dev"]["canary"]
    assert dev["state"] == "baking" and dev["percent"] == 10 and dev["next"] == 50
    assert 530 <= dev["timeLeft"] <= 541  # 10m bake, committed a minute ago
    assert rows["prod"]["canary"] == {"state": "promoted", "percent": 100}
    text = fnops("status", cwd=str(root)).stdout
    assert "canary 10% → 50%, ≥5" in text and "canary promoted (100%)" in text


def test_bad_canary_fields_in_a_pin_are_refused_at_the_field(tmp_path):
    spec = "runtime: python3.12\ntraffic: {canary: 10}\n"
    base = yaml.safe_dump(CANARY_PIN)
    cases = {
        "canary: {step: 100}\n": "releases/dev.yaml:5:16: canary.step: 100 is out of range",
        "promoted: 'yes'\n": "releases/dev.yaml:5:11: promoted: expected",
        "revision: other-1a2b3c4d\n": "revision: 'other-1a2b3c4d' is not a revision of this function (fn-<8 hex>)",
        "canary: {stage: 2}\n": "releases/dev.yaml:5:10: canary.stage",
    }
    for extra, want in cases.items():
        d = write(tmp_path, spec, CANARY_PIN)
        (d / "releases" / "dev.yaml").write_text(base + extra)
        r = fnops("render", str(d), "--env", "dev")
        assert r.returncode == 2 and r.stdout == "", (extra, r.stderr)
        assert want in r.stderr, (extra, r.stderr)
