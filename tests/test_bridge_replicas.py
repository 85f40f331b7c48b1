"""Several bridge replicas on one real PostgreSQL: events posted round-robin, a replica
killed with -9 while it holds work, the database restarted — every accepted (event, sink)
delivered exactly once, one rollback per degraded release, nothing lost that got a 202."""

from __future__ import annotations

import json
import signal
import subprocess
import time
import urllib.request

import pytest

import argocd_template
import postgres
from bridge_harness import Bridge, Replica

pytestmark = pytest.mark.skipif(postgres.missing() is not None, reason=f"needs {postgres.missing()}")


def ready(url) -> int:
    try:
        with urllib.request.urlopen(url + "/readyz", timeout=5) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code
    except OSError:
        return 0


def event(revision, phase, health):
    """checkout's Application at `revision`: distinct revisions of one release are distinct events."""
    app = argocd_template.application("operation-finished", function="checkout", env="dev", revision=revision,
                                      phase=phase, health=health)
    return json.loads(argocd_template.render(app))


def outbox(dsn):
    import psycopg

    with psycopg.connect(dsn) as conn:
        return {(s, st): n for s, st, n in conn.execute(
            "SELECT sink, state, COUNT(*) FROM deliveries GROUP BY sink, state").fetchall()}


def drained(dsn) -> bool:
    """No delivery of any sink is pending in the shared outbox."""
    return not [k for k, v in outbox(dsn).items() if k[1] == "pending" and v]


def lease_holders(dsn, sink):
    import psycopg

    with psycopg.connect(dsn) as conn:
        rows = conn.execute("SELECT lease_owner FROM deliveries WHERE sink = %s AND state = 'pending' AND "
                            "lease_owner IS NOT NULL AND lease_until > extract(epoch from now())", (sink,)).fetchall()
    return {int(r[0].split("-")[-2]) for r in rows}


@pytest.fixture
def cluster(tmp_path, pg_server):
    pg_server.reset()
    b = Bridge(tmp_path, extra={"store": "env:FNOPS_BRIDGE_DSN", "dataDir": str(tmp_path / "data-0"),
                                "delivery": {"lease": "8s", "timeout": "10s"}, "github": {"minWriteInterval": "0s"}},
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


def test_three_replicas_one_killed_mid_flight_deliver_everything_exactly_once(cluster):
    b, others, pg = cluster
    others += [Replica(b, 1), Replica(b, 2)]
    urls = [b.url] + [r.url for r in others]
    b.gh.hang = 0.4  # GitHub is slow, so GitHub work is in flight when a replica dies
    states = [("Running", "Progressing"), ("Succeeded", "Healthy")] * 4
    revs = b.new_revisions(len(states) + 2)
    for i, (phase, health) in enumerate(states):
        assert b.post("/v1/argocd", event(revs[i], phase, health), url=urls[i % 3])[0] == 202
    for i in (len(states), len(states) + 1):  # two reports of one degraded release, to two replicas
        assert b.post("/v1/argocd", event(revs[i], "Succeeded", "Degraded"), url=urls[i % 3])[0] == 202
    n = len(states) + 2
    # Kill whichever replica holds a GitHub lease right now: it dies with GitHub work in flight.
    # Slack is let go idle first: a post in flight at a crash is the one documented window
    # (README), which GitHub — whose state can be read back — does not have.
    b.wait(lambda: not any(v for (sink, st), v in outbox(pg.dsn).items() if st == "pending" and sink != "github"),
           timeout=30, what="Slack, audit and rollback to be idle")
    procs = [b.proc] + [r.proc for r in others]
    deadline = time.monotonic() + 30
    victim = None
    while victim is None and time.monotonic() < deadline:
        holders = lease_holders(pg.dsn, "github")
        victim = next((p for p in procs if p.pid in holders), None)
        time.sleep(0.05)
    assert victim is not None, "no replica ever held GitHub work"
    time.sleep(0.2)  # into the middle of its request
    victim.send_signal(signal.SIGKILL)
    victim.wait(10)
    b.wait(lambda: drained(pg.dsn), timeout=90,
           what="every delivery to finish")
    assert not [k for k in outbox(pg.dsn) if k[1] == "failed"], outbox(pg.dsn)
    # Slack: one message for the release, every later event once in its thread.
    top = b.slack.top_level()
    assert len(top) == 1
    (_, ts), _ = next(iter(top.items()))
    rollback_events = 2  # rolled-back, rollback-skipped (the second report of the same release)
    assert len(b.slack.replies(ts)) == n - 1 + rollback_events
    # GitHub: one deployment, one deployment status per event, no status written twice in a row.
    assert len(b.gh.deployments) == 1
    assert len(b.gh.deployment_statuses) == n + 1  # + inactive, once rolled back
    seq = [(s["state"], s["description"]) for s in b.gh.statuses]
    assert all(x != y for x, y in zip(seq, seq[1:])), seq
    # The audit log: one line per event; Git: one rollback for the degraded release.
    keys = [line["key"] for line in b.audit_lines()]
    assert len(keys) == len(set(keys)) == n + rollback_events
    log = subprocess.run(["git", "log", "--format=%s", "main"], cwd=b.origin, capture_output=True, text=True).stdout
    assert sum(line.startswith("fnops: roll back checkout in dev") for line in log.splitlines()) == 1


def test_a_database_restart_loses_nothing_that_was_accepted(cluster):
    b, _, pg = cluster
    accepted = 0
    revs = b.new_revisions(7)
    for rev in revs[:3]:
        accepted += b.post("/v1/argocd", event(rev, "Running", "Progressing"))[0] == 202
    pg.stop()
    assert ready(b.url) == 503  # readiness tells the Service to send traffic elsewhere
    down = [b.post("/v1/argocd", event(rev, "Running", "Progressing"))[0] for rev in revs[3:5]]
    assert down == [503, 503]  # refused, not lost: the sender retries
    pg.start()
    b.wait(lambda: ready(b.url) == 200, timeout=30, what="the bridge to recover by itself")
    for rev in revs[5:]:
        accepted += b.post("/v1/argocd", event(rev, "Succeeded", "Healthy"))[0] == 202
    assert accepted == 5
    b.wait(lambda: len(b.audit_lines()) == 5 and not outbox(pg.dsn).get(("slack", "pending")), timeout=60,
           what="every accepted event delivered")
    (_, ts), _ = next(iter(b.slack.top_level().items()))
    assert len(b.slack.replies(ts)) == 4
