"""The sink contract (tests/test_sink_contract.py) for the canary sink, with either outbox:
a redelivered bake end moves the pin once (also after a crash between push and record), an
unreachable remote is a TemporaryError, a pull-request environment without GitHub access a
PermanentError. The bake timer's record survives in the store (a new Baker finds it)."""

import os
import shutil

import pytest
import yaml

from fnops.bridge import canary as bakes
from fnops.errors import PermanentError, TemporaryError
from gitrepo import clone, git, show
from test_sink_contract import Rig

PIN = "functions/checkout/releases/dev.yaml"


def commits(rig):
    return int(git(rig.b.origin, "rev-list", "--count", "main"))


def test_canary_sink_contract(tmp_path, monkeypatch, store_url):
    rig = Rig(tmp_path, monkeypatch, store_url)
    try:
        work = clone(rig.b.origin, tmp_path / "canary-clone")
        with open(os.path.join(work, "functions/checkout/function.yaml"), "a", encoding="utf-8") as f:
            f.write("traffic: {canary: 10, steps: [10, 40, 70], bakeTime: 1s}\n")
        git(work, "commit", "--quiet", "-am", "checkout: canary")
        git(work, "push", "--quiet", "origin", "HEAD:main")
        rig.b.revision = git(rig.b.origin, "rev-parse", "main")
        sink = rig.sinks["canary"]

        sink.deliver(rig.event(health="Healthy") | {"kind": "deployed"}, rig.ctx)  # the bake starts
        rec = rig.store.get(bakes.NS, "checkout|dev")
        assert rec["percent"] == 10 and rec["next"] == 40 and rec["due"] - rec["started"] == 1
        # A Baker of a restarted bridge finds it in the store, and only once it is due.
        seen = []
        baker = bakes.Baker(rig.store, seen.extend)
        assert baker.tick(now=rec["started"] + 0.5) == 0 and baker.tick(now=rec["started"] + 1.0) == 1
        (ended,) = seen
        assert ended["onlySinks"] == ["canary"] and ended["key"].endswith(":10:baked")
        ((eid, _),) = rig.store.accept([ended], lambda e: ["canary"])
        ended["id"] = eid

        before = commits(rig)
        (out,) = sink.deliver(ended, rig.ctx)
        assert out["kind"] == "canary-advanced" and commits(rig) == before + 1
        assert yaml.safe_load(show(rig.b.origin, PIN))["canary"]["step"] == 40
        sink.deliver(ended, rig.ctx)  # redelivered: the recorded outcome, no second commit
        rig.store.put("canary-outcome", ended["key"], None)  # a crash after the push, before the record
        rig.store.put(bakes.NS, "checkout|dev", {**rec, "over": False})
        sink.deliver(ended, rig.ctx)
        assert commits(rig) == before + 1, "the canary moved twice"

        # The next step's bake ends while the GitOps remote is unreachable: retry later.
        rec40 = {**rec, "percent": 40, "next": 70, "over": False}
        rig.store.put(bakes.NS, "checkout|dev", rec40)
        ended40 = bakes.bake_ended_event(rec40)
        ((ended40["id"], _),) = rig.store.accept([ended40], lambda e: ["canary"])
        shutil.move(rig.b.origin, rig.b.origin + ".away")
        try:
            with pytest.raises(TemporaryError):
                sink.deliver(ended40, rig.ctx)
        finally:
            shutil.move(rig.b.origin + ".away", rig.b.origin)
        (out,) = sink.deliver(ended40, rig.ctx)
        assert out["kind"] == "canary-advanced" and yaml.safe_load(show(rig.b.origin, PIN))["canary"]["step"] == 70

        # A pull-request environment without GitHub access cannot work: stop, do not retry.
        release = dict(rec["release"], canary=dict(rec["release"]["canary"], approval="required"))
        rec70 = {**rec, "percent": 70, "next": 100, "over": False, "release": release}
        rig.store.put(bakes.NS, "checkout|dev", rec70)
        ended70 = bakes.bake_ended_event(rec70)
        ((ended70["id"], _),) = rig.store.accept([ended70], lambda e: ["canary"])
        sink.github = None
        with pytest.raises(PermanentError):
            sink.deliver(ended70, rig.ctx)
        assert "promoted" not in yaml.safe_load(show(rig.b.origin, PIN))
    finally:
        rig.close()


class _Records:
    """The store's record calls, in memory (the bake timers use nothing else)."""

    def __init__(self):
        self.kv = {}

    def get(self, ns, key):
        return self.kv.get((ns, key))

    def put(self, ns, key, value):
        self.kv[(ns, key)] = value

    def items(self, ns):
        return sorted((k, v) for (n, k), v in self.kv.items() if n == ns)


def test_an_image_released_again_after_an_abort_bakes_anew():
    """Release A → canary aborted → rolled back → A released again: a new release of the same
    image and step. Its bake must start and end as its own event, not fold into the old one."""
    store, seen = _Records(), []
    first = {"function": "fn", "environment": "dev", "image": "r/fn@sha256:" + "a" * 64, "percent": 10, "next": 100,
             "bakeSeconds": 1, "started": 0, "due": 1, "releasedAt": "2026-12-01T10:00:00Z"}
    assert bakes.start_bake(store, "fn", "dev", first)
    assert not bakes.start_bake(store, "fn", "dev", dict(first, started=0.5, due=1.5))  # a re-sync: same clock
    bakes.Baker(store, seen.extend).tick(now=2)
    bakes.end_bake(store, "fn", "dev", first["image"], aborted=True)
    again = dict(first, started=10, due=11, releasedAt="2026-12-01T11:00:00Z")
    assert bakes.start_bake(store, "fn", "dev", again)
    assert bakes.Baker(store, seen.extend).tick(now=12) == 1
    assert len({e["key"] for e in seen}) == 2, [e["key"] for e in seen]


def test_alert_words_reach_a_commit_message_only_in_their_own_shape():
    from fnops.bridge.sinks.canary import CanarySink

    sink = CanarySink.__new__(CanarySink)
    sink.argocd = None
    hostile = {"status": "firing", "name": "Fast](https://evil.example) @acme/everyone",
               "fingerprint": "x)\n\n@acme/everyone [Approve](https://evil.example)", "startsAt": "now\n\n# hi"}
    fine = {"status": "firing", "name": "FnopsErrorBudgetBurnFast", "fingerprint": "0f3a9c",
            "startsAt": "2026-12-02T10:00:00Z"}
    text = sink._links({"function": "fn", "environment": "dev", "key": "k", "alerts": [hostile, fine]}, {})
    assert "@acme" not in text and "evil.example" not in text and "# hi" not in text
    assert "Alert: ? (fingerprint ?, since ?)" in text
    assert "Alert: FnopsErrorBudgetBurnFast (fingerprint 0f3a9c, since 2026-12-02T10:00:00Z)" in text
