"""A store outage is temporary everywhere. Three `fnops bridge serve` replicas on one real
PostgreSQL, a stream of events through the HTTP door, one replica kill -9'd while it holds
work, then the database stopped (pg_ctl stop -m fast) for several seconds while Slack and
GitHub deliveries are in flight — their requests answered late, so the sinks' own records and
the outcomes meet the outage. Every accepted (event, sink) is delivered exactly once, counted
at the doubles; nothing is dead-lettered (with maxAttempts 2, an outage counted as an attempt
would show); the outbox drains without an operator."""

from __future__ import annotations

import signal
import time

import pytest

import postgres
from bridge_harness import Bridge, Replica
from gitrepo import git
from test_bridge_replicas import drained, event, lease_holders, outbox, ready
from test_canary_bridge import argocd, audit_kinds, pin, wait_commit, with_canary

pytestmark = pytest.mark.skipif(postgres.missing() is not None, reason=f"needs {postgres.missing()}")

OUTAGE = 5.0  # seconds the database is away


@pytest.fixture
def cluster(tmp_path, pg_server):
    pg_server.reset()
    # lease 30s: longer than the outage and the pool's reconnect, so no replica takes over work
    # whose owner is only waiting for the database; a killed replica's work waits that long.
    b = Bridge(tmp_path, extra={"store": "env:FNOPS_BRIDGE_DSN", "dataDir": str(tmp_path / "data-0"),
                                "delivery": {"lease": "30s", "timeout": "10s", "maxAttempts": 2},
                                "github": {"minWriteInterval": "0s"}},
               env={"FNOPS_BRIDGE_DSN": pg_server.dsn})
    b.start()
    others = []
    try:
        yield b, others, pg_server
    finally:
        for r in others:
            r.stop()
        b.stop()
    assert b.slack.violations == [] and b.gh.violations == []


def in_flight(dsn, sink) -> bool:
    return bool(lease_holders(dsn, sink))


def test_three_replicas_a_kill_and_a_database_outage_deliver_everything_exactly_once(cluster):
    b, others, pg = cluster
    others += [Replica(b, 1), Replica(b, 2)]
    urls = [b.url] + [r.url for r in others]
    procs = [b.proc] + [r.proc for r in others]
    b.gh.hang = 0.4  # GitHub and Slack answer late: their work is in flight when something strikes
    revs = b.new_revisions(12)
    states = [("Running", "Progressing"), ("Succeeded", "Healthy")] * 6
    for i in range(6):
        assert b.post("/v1/argocd", event(revs[i], *states[i]), url=urls[i % 3])[0] == 202
    # kill -9 a replica holding GitHub work (a thread reply of Slack in flight at a crash is the
    # one documented window, so Slack is let go idle first).
    b.wait(lambda: not any(v for (sink, st), v in outbox(pg.dsn).items() if st == "pending" and sink != "github"),
           timeout=60, what="Slack, audit and rollback to be idle")
    deadline, victim = time.monotonic() + 30, None
    while victim is None and time.monotonic() < deadline:
        victim = next((p for p in procs if p.pid in lease_holders(pg.dsn, "github")), None)
        time.sleep(0.05)
    assert victim is not None, "no replica ever held GitHub work"
    victim.send_signal(signal.SIGKILL)
    victim.wait(10)
    alive = [u for u, p in zip(urls, procs) if p is not victim]
    # More events, and the database stopped while Slack and GitHub requests are in flight.
    b.slack.hang = 0.3
    for i in range(6, 12):
        assert b.post("/v1/argocd", event(revs[i], *states[i]), url=alive[i % 2])[0] == 202
    b.wait(lambda: in_flight(pg.dsn, "slack") and in_flight(pg.dsn, "github"), timeout=30,
           what="Slack and GitHub work in flight")
    pg.stop("fast")
    stopped = time.monotonic()
    try:
        assert all(ready(u) == 503 for u in alive)
        time.sleep(max(0.0, OUTAGE - (time.monotonic() - stopped)))
    finally:
        pg.start()  # whatever happened: the session's server serves the next tests
    b.wait(lambda: all(ready(u) == 200 for u in alive), timeout=60, what="the replicas to recover by themselves")
    b.wait(lambda: drained(pg.dsn), timeout=120,
           what="every delivery to finish")
    assert not [k for k in outbox(pg.dsn) if k[1] == "failed"], outbox(pg.dsn)
    n = 12
    # Slack: one message for the release, every later event once in its thread.
    top = b.slack.top_level()
    assert len(top) == 1
    (_, ts), _ = next(iter(top.items()))
    assert len(b.slack.replies(ts)) == n - 1
    assert b.slack.posts() == n
    # GitHub: one deployment, one deployment status per event, no commit status twice in a row.
    assert len(b.gh.deployments) == 1
    assert len(b.gh.deployment_statuses) == n
    seq = [(s["state"], s["description"]) for s in b.gh.statuses]
    assert all(x != y for x, y in zip(seq, seq[1:])), seq
    keys = [line["key"] for line in b.audit_lines()]
    assert len(keys) == len(set(keys)) == n
    # The outage was met mid-delivery, and waited out rather than dead-lettered.
    logs = b.logs() + "".join((b.tmp / f"bridge-{i}.log").read_text(errors="replace") for i in (1, 2))
    assert "deliveries stay pending until it is back" in logs
    assert "unexpected error; delivery failed" not in logs and ": delivery of event" not in logs


def test_a_bake_that_ends_while_the_database_is_down_is_promoted_once_it_is_back(cluster):
    """The canary's records (its bake timer, the pin's state) live in the same store: the bake
    ends during an outage, and the step is committed after it, once, with no dead letter."""
    b, _, pg = cluster
    bake = 3
    _, rev0 = with_canary(b, bake=bake)
    assert b.post("/v1/argocd", argocd(b, rev0))[0] == 202
    b.wait(lambda: drained(pg.dsn), timeout=30,
           what="the deployed event to start the bake")
    assert git(b.origin, "rev-parse", "main") == rev0, "the bake ended before the outage"
    pg.stop("fast")
    stopped = time.monotonic()
    try:
        assert ready(b.url) == 503
        time.sleep(max(0.0, OUTAGE - (time.monotonic() - stopped)))  # the bake ends in here
        assert git(b.origin, "rev-parse", "main") == rev0  # nothing decided without the store
    finally:
        pg.start()
    back = time.monotonic()
    step = wait_commit(b, rev0, 60)
    assert time.monotonic() - back < 30  # soon after the database is back, without an operator
    assert pin(b, step)["canary"]["step"] == 50
    assert "baked" in git(b.origin, "log", "-1", "--format=%B", step)
    b.wait(lambda: drained(pg.dsn), timeout=60,
           what="every delivery to finish")
    assert not [k for k in outbox(pg.dsn) if k[1] == "failed"], outbox(pg.dsn)
    assert [k for k, _ in audit_kinds(b)].count("canary-advanced") == 1
    assert "unexpected error" not in b.logs()
