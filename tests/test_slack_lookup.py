"""The Slack sink's lookup of a post whose outcome is unknown, in process against the Slack
double (which implements conversations.history and message metadata from the reference data):
a crash is the sink stopping at a crash point with the store as it was; then the delivery runs
again. And the double itself answers metadata and history as the reference data says."""

from __future__ import annotations

import logging

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

import argocd_template
from bridge_harness import Bridge
from fnops.bridge import config as bridge_config
from fnops.bridge.context import Context
from fnops.bridge.metrics import Metrics
from fnops.bridge.sinks import build
from fnops.bridge.sinks import slack as slack_sink
from fnops.bridge.store import open_store
from fnops.errors import TemporaryError


class Crash(BaseException):
    """The process dying at a crash point (BaseException: no sink code catches it)."""


class Rig:
    def __init__(self, tmp_path, monkeypatch):
        self.b = Bridge(tmp_path)
        for k in ("FNOPS_BRIDGE_TOKEN", "FNOPS_BRIDGE_HMAC", "SLACK_BOT_TOKEN", "GITHUB_TOKEN"):
            monkeypatch.setenv(k, self.b.env[k])
        self.store = open_store(f"sqlite:///{tmp_path}/data/bridge.db")
        self.ctx = Context(bridge_config.load(str(self.b.config)), self.store, str(tmp_path / "data"))
        self.ctx.metrics = Metrics()
        self.sink = build(self.ctx.config, self.ctx)["slack"]
        self.crash_at = None
        monkeypatch.setattr(slack_sink, "crash_point", self._crash_point)

    def _crash_point(self, name):
        if name == self.crash_at:
            self.crash_at = None
            raise Crash(name)

    def event(self):
        from fnops.bridge.events import from_argocd

        app = argocd_template.application("operation-finished", function="checkout", env="dev",
                                          revision=self.b.revision, phase="Running", health="Progressing")
        ev = from_argocd(__import__("json").loads(argocd_template.render(app)))
        self.store.accept([ev], lambda e: ["slack"])
        return ev

    def crash_after_send(self, ev):
        self.crash_at = "slack:after-send"
        with pytest.raises(Crash):
            self.sink.deliver(ev, self.ctx)

    def lookups(self, result):
        return self.ctx.metrics.slack_lookups.labels(result)._value.get()

    def close(self):
        self.store.close()
        self.b.stop()


@pytest.fixture
def rig(tmp_path, monkeypatch):
    r = Rig(tmp_path, monkeypatch)
    # checkout posts to #checkout: an earlier post revealed its ID (C0TEAM)
    r.store.put("slack-channel", "#checkout", "C0TEAM")
    try:
        yield r
    finally:
        r.close()
    assert r.b.slack.violations == []


def test_a_post_slack_accepted_before_a_crash_is_found_and_adopted_not_repeated(rig):
    ev = rig.event()
    rig.crash_after_send(ev)
    assert rig.b.slack.posts() == 1 and rig.store.get("slack-reply", str(ev["id"])) is None  # ts never stored
    rig.sink.deliver(ev, rig.ctx)  # the redelivery
    assert rig.b.slack.posts() == 1 and len(rig.b.slack.top_level()) == 1
    (channel, ts), msg = next(iter(rig.b.slack.top_level().items()))
    assert msg["metadata"]["event_type"] == "fnops_release"
    assert msg["metadata"]["event_payload"]["key"] == ev["key"]
    assert rig.store.get("slack-reply", str(ev["id"])) == ts  # adopted: the release's next events update it
    assert rig.lookups("found") == 1
    history = [a for m, a in rig.b.slack.calls if m == "conversations.history"]
    assert len(history) == 1 and history[0]["channel"] == "C0TEAM" and history[0]["include_all_metadata"] in ("1", "true")
    assert float(history[0]["oldest"]) < float(ts)


def test_only_an_unknown_outcome_is_looked_up(rig):
    ev = rig.event()
    rig.b.slack.method_faults["chat.postMessage"] = [(429, {"Retry-After": "2"}, {"ok": False, "error": "ratelimited"})]
    with pytest.raises(TemporaryError) as e:
        rig.sink.deliver(ev, rig.ctx)
    assert e.value.retry_after == 2
    rig.sink.deliver(ev, rig.ctx)  # Slack said no: nothing to look for
    assert [m for m, _ in rig.b.slack.calls] == ["chat.postMessage", "chat.postMessage"]
    assert len(rig.b.slack.top_level()) == 1 and rig.lookups("absent") == rig.lookups("found") == 0


def test_the_lookup_waits_out_a_429_and_reads_a_busy_channel_in_a_few_pages(rig):
    ev = rig.event()
    rig.crash_after_send(ev)
    slack = rig.b.slack
    for i in range(450):  # a busy channel since: other apps' messages
        assert slack.handle("chat.postMessage", {"channel": "C0TEAM", "text": f"other {i}"},
                            f"Bearer {slack.token}")[2]["ok"]
    slack.method_faults["conversations.history"] = [(429, {"Retry-After": "3"}, {"ok": False, "error": "ratelimited"})]
    with pytest.raises(TemporaryError) as e:
        rig.sink.deliver(ev, rig.ctx)
    assert e.value.retry_after == 3  # tier 3: as Slack asked
    posts = slack.posts()
    rig.sink.deliver(ev, rig.ctx)
    assert slack.posts() == posts  # found on the third page, not posted again
    pages = [a for m, a in slack.calls if m == "conversations.history"][1:]
    assert len(pages) == 3 and pages[0].get("cursor") is None and all(p.get("cursor") for p in pages[1:])
    assert rig.lookups("found") == 1


def test_a_post_buried_under_a_busy_hour_is_found_within_the_attempts_window(rig):
    """History pages run newest first: 700 messages posted after the crash, an hour later,
    would bury the post past the 3 pages read from `oldest` alone. The lookup bounds `latest`
    by the unknown attempt's own time, so it reads past none of them."""
    ev = rig.event()
    rig.crash_after_send(ev)
    slack = rig.b.slack
    slack._last_ts += 3600  # the double's clock: what follows is posted an hour later
    for i in range(700):
        assert slack.handle("chat.postMessage", {"channel": "C0TEAM", "text": f"other {i}"},
                            f"Bearer {slack.token}")[2]["ok"]
    posts = slack.posts()
    rig.sink.deliver(ev, rig.ctx)
    assert slack.posts() == posts and rig.lookups("found") == 1  # adopted, not posted again
    (page,) = [a for m, a in slack.calls if m == "conversations.history"]
    assert float(page["oldest"]) < float(page["latest"]) < float(slack._last_ts) - 3000


def test_without_the_history_scope_the_bridge_says_so_and_posts_as_before(rig, caplog):
    rig.b.slack.scopes = {"chat:write"}
    ev = rig.event()
    rig.crash_after_send(ev)
    with caplog.at_level(logging.WARNING, logger="fnops.bridge"):
        rig.sink.deliver(ev, rig.ctx)  # not failed: degraded to posting again
    assert len(rig.b.slack.top_level()) == 2  # the duplicate the scope would have prevented
    assert rig.lookups("no-scope") == 1
    assert any("lacks channels:history" in r.getMessage() and "grant channels:history and groups:history"
               in r.getMessage() for r in caplog.records)
    assert b"fnops_bridge_slack_lookups_total{result=\"no-scope\"} 1.0" in rig.ctx.metrics.render()


def test_the_double_reads_metadata_and_history_as_slack_does(tmp_path):
    from slack_double import SlackDouble

    with SlackDouble(token="xoxb-t", channels=("C0DEPLOYS",)) as d:
        c = WebClient(token="xoxb-t", base_url=d.url + "/api/")
        c.retry_handlers = []
        meta = {"event_type": "fnops_release", "event_payload": {"function": "f", "image": "i"}}
        first = c.chat_postMessage(channel="#deploys", text="a", metadata=meta)["ts"]
        c.chat_postMessage(channel="C0DEPLOYS", text="reply", thread_ts=first)
        second = c.chat_postMessage(channel="C0DEPLOYS", text="b")["ts"]
        for bad, code in ([{"event_type": "x"}, "invalid_metadata_schema"],
                          [{"event_type": "x", "event_payload": {"nested": {"a": 1}}}, "invalid_metadata_schema"],
                          ["{not json", "invalid_metadata_format"]):
            with pytest.raises(SlackApiError) as e:
                c.chat_postMessage(channel="C0DEPLOYS", text="c", metadata=bad)
            assert e.value.response["error"] == code
        assert len(d.violations) == 3  # and each was a violation: fnops must never send one
        d.violations.clear()
        r = c.conversations_history(channel="C0DEPLOYS", include_all_metadata=True)
        assert [m["ts"] for m in r["messages"]] == [second, first]  # newest first, no thread replies
        assert r["messages"][1]["metadata"] == meta and r["messages"][1]["reply_count"] == 1
        plain = c.conversations_history(channel="C0DEPLOYS")["messages"][1]
        assert plain["metadata"] == {"event_type": "fnops_release"}  # the payload only when asked for
        page = c.conversations_history(channel="C0DEPLOYS", limit=1)
        assert page["has_more"] and [m["ts"] for m in page["messages"]] == [second]
        rest = c.conversations_history(channel="C0DEPLOYS", limit=1, cursor=page["response_metadata"]["next_cursor"])
        assert [m["ts"] for m in rest["messages"]] == [first]
        assert c.conversations_history(channel="C0DEPLOYS", oldest=first)["messages"][0]["ts"] == second
        with pytest.raises(SlackApiError) as e:
            c.conversations_history(channel="#deploys")  # an ID, not a name
        assert e.value.response["error"] == "channel_not_found"
        d.scopes = {"chat:write"}
        with pytest.raises(SlackApiError) as e:
            c.conversations_history(channel="C0DEPLOYS")
        assert e.value.response["error"] == "missing_scope" and e.value.response["needed"] == "channels:history"
        c.chat_update(channel="C0DEPLOYS", ts=first, text="a2")
        assert d.messages[("C0DEPLOYS", first)]["metadata"] == meta  # left out: kept
        assert d.violations == []
