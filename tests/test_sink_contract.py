"""One contract, every sink: a redelivered event has its effect once; a passing fault is a
TemporaryError (retry), a lasting one a PermanentError (stop) — each against its real
local counterpart (Slack and GitHub doubles, bare Git repositories) — and with either
outbox (SQLite, PostgreSQL) keeping the records that make redelivery idempotent."""

import os
import shutil

import pytest

import argocd_template
from bridge_harness import Bridge
from fnops.bridge import config as bridge_config
from fnops.bridge.context import Context
from fnops.bridge.sinks import build
from fnops.bridge.store import open_store
from fnops.errors import PermanentError, TemporaryError
from gitrepo import git


class Rig:
    def __init__(self, tmp_path, monkeypatch, store_url):
        self.b = Bridge(tmp_path)
        for k in ("FNOPS_BRIDGE_TOKEN", "FNOPS_BRIDGE_HMAC", "SLACK_BOT_TOKEN", "GITHUB_TOKEN"):
            monkeypatch.setenv(k, self.b.env[k])
        self.cfg = bridge_config.load(str(self.b.config))
        self.store = open_store(store_url)
        self.ctx = Context(self.cfg, self.store, str(tmp_path / "data"))
        self.sinks = build(self.cfg, self.ctx)

    def event(self, phase="Succeeded", health="Degraded"):
        from fnops.bridge.events import from_argocd

        app = argocd_template.application("operation-finished", function="checkout", env="dev",
                                          revision=self.b.revision, phase=phase, health=health)
        ev = from_argocd(__import__("json").loads(argocd_template.render(app)))
        self.store.accept([ev], lambda e: list(self.sinks))
        return ev

    def close(self):
        self.store.close()
        self.b.stop()


def effects(rig, name):
    b = rig.b
    if name == "slack":
        return len(b.slack.messages)
    if name == "github":
        return len(b.gh.statuses) + len(b.gh.deployments) + len(b.gh.deployment_statuses)
    if name == "audit":
        return len(b.audit_lines())
    return int(git(b.origin, "rev-list", "--count", "main"))


def temporary_fault(rig, name):
    if name == "slack":
        rig.b.slack.faults.append((429, {"Retry-After": "7"}, {"ok": False, "error": "ratelimited"}))
    elif name == "github":
        rig.b.gh.faults.append((503, {}, {"message": "Service Unavailable"}))
    else:  # audit, rollback: the GitOps remote is unreachable
        shutil.move(rig.b.origin, rig.b.origin + ".away")
        shutil.rmtree(os.path.join(rig.ctx.data_dir, "audit-tree"), ignore_errors=True)


def permanent_fault(rig, name):
    if name == "slack":
        rig.b.slack.faults.append((200, {}, {"ok": False, "error": "channel_not_found"}))
    elif name == "github":
        rig.b.gh.faults.append((422, {}, {"message": "Validation Failed"}))
    elif name == "rollback":
        rig.sinks["rollback"].github = None  # pr mode without GitHub access cannot work
        rig.b.gh.faults.clear()
        return "pr"
    return None


@pytest.mark.parametrize("name", ["slack", "github", "audit", "rollback"])
def test_sink_contract(name, tmp_path, monkeypatch, store_url):
    rig = Rig(tmp_path, monkeypatch, store_url)
    try:
        sink = rig.sinks[name]
        ev = rig.event()
        before = effects(rig, name)
        sink.deliver(ev, rig.ctx)
        once = effects(rig, name)
        assert once > before, f"{name} had no effect"
        sink.deliver(ev, rig.ctx)  # the outbox hands it over again (e.g. after a crash)
        assert effects(rig, name) == once, f"{name} is not idempotent"
        if name == "github":  # a crash after GitHub answered, before the records were written
            release = rig.ctx.release(ev)
            src = release["source"]
            rig.store.put("github-status", f"{src['repo']}|{src['commit']}|fnops/dev/checkout", [])
            rig.store.put("github-deployment", f"{src['repo']}|{src['commit']}|dev|checkout", None)
            did = rig.b.gh.deployments[0]["id"]
            rig.store.put("github-deployment-status", f"{did}|{ev['id']}", None)
            sink.deliver(ev, rig.ctx)
            assert effects(rig, name) == once, "github repeated a write that had landed before the crash"
            assert [r[0] for r in rig.b.gh.requests[-4:]].count("GET") >= 2  # it asked GitHub instead

        ev2 = rig.event(phase="Running", health="Progressing") if name != "rollback" else rig.event("Error", "Degraded")
        temporary_fault(rig, name)
        with pytest.raises(TemporaryError) as e:
            sink.deliver(ev2, rig.ctx)
        if name == "slack":
            assert e.value.retry_after == 7
        if os.path.exists(rig.b.origin + ".away"):
            shutil.move(rig.b.origin + ".away", rig.b.origin)

        mode = permanent_fault(rig, name)
        if name == "audit":
            return  # writing a file to Git has no lasting failure of its own: it retries
        ev3 = rig.event(phase="Failed", health="Missing")
        if mode == "pr":
            rig.store.put("release", ev3["key"], {**rig.ctx.release(ev), "rollbackMode": "pr"})
        with pytest.raises(PermanentError):
            sink.deliver(ev3, rig.ctx)
    finally:
        rig.close()
