"""One contract, both outboxes (SQLite embedded, PostgreSQL for several replicas): what is
accepted is kept, repeats fold, order holds per (sink, function, environment), dead letters
block nothing and can be replayed, guards hold once, retention forgets only what is done."""

from __future__ import annotations

import threading
import time

import pytest

from fnops.bridge.store import open_store


def ev(key, fn="hello", env="dev", **kw):
    return {"key": key, "function": fn, "environment": env, **kw}


@pytest.fixture
def store(store_url):
    s = open_store(store_url)
    yield s
    s.close()


def test_accept_folds_repeats_and_makes_one_delivery_per_sink(store):
    out = store.accept([ev("a"), ev("b")], lambda e: ["slack", "github"])
    assert [fresh for _, fresh in out] == [True, True]
    again = store.accept([ev("a")], lambda e: ["slack", "github"])
    assert again == [(out[0][0], False)]
    assert store.counts() == {"events": 2, "deliveries": {("slack", "pending"): 2, ("github", "pending"): 2}}
    assert store.pending_events() == 2


def test_order_per_subject_and_dead_letters_block_nothing(store):
    (a, _), (b, _), (c, _) = store.accept([ev("a"), ev("b"), ev("c", fn="other")], lambda e: ["slack"])
    due = store.due("slack", lane_id="l1")
    assert [d.event_id for d in due] == [a, c]  # b waits behind a (same function and environment)
    assert due[0].event["key"] == "a" and due[0].event["id"] == a
    store.retry(a, "slack", 0.0, "blip", lane_id="l1")
    store.done(c, "slack", lane_id="l1")
    assert [d.event_id for d in store.due("slack", lane_id="l1")] == [a]
    store.fail(a, "slack", "poison", lane_id="l1")
    assert [d.event_id for d in store.due("slack", lane_id="l1")] == [b]  # the dead letter holds nothing back
    rows = {r[0]: r for r in store.deliveries("failed")}
    assert rows[a][2:5] == ("failed", 2, "poison") and rows[a][5] == "a"
    assert store.requeue([(a, "slack")]) == 1 and store.requeue([(a, None)]) == 0
    assert a in [r[0] for r in store.deliveries("pending")]


def test_retry_waits_its_delay(store):
    (a, _), = store.accept([ev("a")], lambda e: ["github"])
    assert store.due("github", lane_id="l")
    store.retry(a, "github", 60.0, "429", lane_id="l")
    assert store.due("github", lane_id="l") == []
    assert store.next_due_at("github") >= time.time() + 50
    assert [d.event_id for d in store.due("github", now=time.time() + 61, lane_id="l")] == [a]


def test_guards_and_records(store):
    assert store.claim("rollback-guard", "hello|dev|img", 1) is True
    assert store.claim("rollback-guard", "hello|dev|img", 2) is False
    assert store.get("rollback-guard", "hello|dev|img") == 1
    store.put("slack-message", "k", {"ts": "1.2", "channel": "C1"})
    store.put("slack-message", "k", {"ts": "1.3", "channel": "C1"})
    assert store.get("slack-message", "k") == {"ts": "1.3", "channel": "C1"}
    assert store.get("nothing", "here") is None
    # A namespace lists its own records only, by key: what the canary bake timers walk.
    store.put("canary-bake", "b|dev", {"due": 2})
    store.put("canary-bake", "a|dev", {"due": 1})
    assert store.items("canary-bake") == [("a|dev", {"due": 1}), ("b|dev", {"due": 2})]
    assert store.items("nothing") == []


def test_bakes_started_together_on_two_replicas_are_both_kept(store_url):
    """Two replicas recording bakes at the same moment: each timer is its own record, so
    neither write can drop the other (a shared index read and rewritten could)."""
    from fnops.bridge import canary

    stores = [open_store(store_url), open_store(store_url)]
    try:
        def start(i):
            for n in range(10):
                canary.start_bake(stores[i], f"fn{i}-{n}", "dev", {"image": "img", "percent": 10, "due": 0,
                                    "function": f"fn{i}-{n}", "environment": "dev", "next": 100,
                                    "bakeSeconds": 1, "started": 0})
        threads = [threading.Thread(target=start, args=(i,)) for i in (0, 1)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        seen = []
        assert canary.Baker(stores[0], seen.extend).tick(now=1.0) == 20
        assert sorted(e["function"] for e in seen) == sorted(f"fn{i}-{n}" for i in (0, 1) for n in range(10))
    finally:
        for s in stores:
            s.close()


def test_prune_forgets_only_what_every_sink_delivered(store):
    old = time.time() - 10_000
    (a, _), (b, _) = store.accept([ev("a", receivedAt=old), ev("b", receivedAt=old)], lambda e: ["slack"])
    for d in store.due("slack", lane_id="l"):
        store.done(d.event_id, "slack", lane_id="l")
    store.put("release", "a", {"image": "x"})
    time.sleep(0.01)
    assert store.prune(time.time()) == 1  # b is still pending: it waited behind a
    assert store.get("release", "a") is None and store.counts()["events"] == 1


def test_postgres_leases_give_each_delivery_to_one_lane(pg_server):
    from fnops.bridge.store.postgres import PostgresStore

    pg_server.reset()
    s1, s2 = PostgresStore(pg_server.dsn, lease_seconds=2), PostgresStore(pg_server.dsn, lease_seconds=2)
    try:
        ids = [eid for eid, _ in s1.accept([ev(f"k{i}", fn=f"f{i}") for i in range(20)], lambda e: ["slack"])]
        got1 = [d.event_id for d in s1.due("slack", lane_id="one", limit=10)]
        got2 = [d.event_id for d in s2.due("slack", lane_id="two", limit=50)]
        assert len(got1) == 10 and set(got1).isdisjoint(got2) and sorted(got1 + got2) == ids
        assert s1.touch(got1[0], "slack", "one") and not s2.touch(got1[0], "slack", "two")
        time.sleep(2.3)  # lane "one" died: its leases run out and lane "two" takes the work over
        taken = [d.event_id for d in s2.due("slack", lane_id="two", limit=50)]
        assert set(got1) <= set(taken)
        s1.done(got1[0], "slack", lane_id="one")  # a late finish from the old owner changes nothing
        assert got1[0] in [r[0] for r in s2.deliveries("pending")]
    finally:
        s1.close()
        s2.close()


def test_postgres_migrations_apply_once_with_replicas_starting_together(pg_server):
    from fnops.bridge.store.postgres import PostgresStore

    pg_server.reset()
    stores, errors = [], []

    def start():
        try:
            stores.append(PostgresStore(pg_server.dsn))
        except Exception as e:  # pragma: no cover - the failure this test looks for
            errors.append(e)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert errors == [] and len(stores) == 4
        import psycopg

        with psycopg.connect(pg_server.dsn) as conn:
            assert conn.execute("SELECT array_agg(version) FROM fnops_schema").fetchone()[0] == [1]
    finally:
        for s in stores:
            s.close()
