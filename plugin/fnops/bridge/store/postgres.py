"""The outbox on PostgreSQL (psycopg 3 with a connection pool): several bridge replicas
share one database and the work.

The semantics are the SQLite store's (event and deliveries committed before the 202,
repeats folded, order per (sink, function, environment), dead letters, retention), plus
leases: a lane claims due deliveries with `FOR UPDATE SKIP LOCKED` and stamps them with its
id and a lease expiry, so no delivery runs on two replicas at once, and one whose replica
died is claimed again once its lease runs out. Finishing an attempt checks the lease is
still ours. Guards (`claim`) are single-row inserts, so they hold across replicas.

Migrations are numbered and applied on start inside one transaction holding an advisory
lock, so replicas starting together apply each exactly once.
"""

from __future__ import annotations

import json
import time
from contextlib import contextmanager

from .base import Delivery, StoreUnavailable

LEASE_SECONDS = 120.0  # well past a delivery's timeouts; a dead replica's work waits this long
_LOCK_ID = 0x666E6F7073  # "fnops": the advisory lock migrations run under

MIGRATIONS = [
    # 1: the outbox
    """
    CREATE TABLE events (
      id BIGSERIAL PRIMARY KEY,
      key TEXT NOT NULL UNIQUE,
      subject TEXT NOT NULL DEFAULT '',
      body JSONB NOT NULL,
      received_at DOUBLE PRECISION NOT NULL
    );
    CREATE TABLE deliveries (
      event_id BIGINT NOT NULL REFERENCES events(id) ON DELETE CASCADE,
      sink TEXT NOT NULL,
      subject TEXT NOT NULL DEFAULT '',
      state TEXT NOT NULL DEFAULT 'pending',
      attempts INTEGER NOT NULL DEFAULT 0,
      next_at DOUBLE PRECISION NOT NULL DEFAULT 0,
      last_error TEXT,
      updated_at DOUBLE PRECISION NOT NULL DEFAULT 0,
      lease_owner TEXT,
      lease_until DOUBLE PRECISION NOT NULL DEFAULT 0,
      PRIMARY KEY (event_id, sink)
    );
    CREATE INDEX deliveries_due ON deliveries (sink, state, next_at);
    CREATE INDEX deliveries_subject ON deliveries (sink, subject, event_id) WHERE state = 'pending';
    CREATE TABLE kv (
      ns TEXT NOT NULL, key TEXT NOT NULL, value JSONB NOT NULL,
      PRIMARY KEY (ns, key)
    );
    """,
]


class PostgresStore:
    name = "postgresql"

    def __init__(self, dsn: str, *, min_size: int = 1, max_size: int = 8, lease_seconds: float = LEASE_SECONDS,
                 pooled: bool = True, connect_timeout: int = 3):
        """pooled=False (a command that runs a query or two): no pool to fill in the background,
        each query connects once within `connect_timeout`, and a failure is raised at once."""
        import psycopg
        from psycopg_pool import ConnectionPool, NullConnectionPool

        self.dsn = dsn  # only to redact it from errors
        self.errors = (psycopg.Error,)  # what a failing outbox raises (a command turns it into one line)
        self.lease = lease_seconds
        kw = {"autocommit": False, "connect_timeout": connect_timeout}
        if pooled:
            # The pool reconnects by itself after the database restarts; callers see errors meanwhile.
            self.pool = ConnectionPool(dsn, min_size=min_size, max_size=max_size, open=False, timeout=3, kwargs=kw)
        else:
            self.pool = NullConnectionPool(dsn, max_size=1, open=False, timeout=connect_timeout, kwargs=kw)
        try:
            # Without a pool there is nothing to fill: the first query connects, or raises why not.
            self.pool.open(wait=pooled, timeout=30)
            self.migrate()
        except BaseException:
            self.pool.close()  # no worker left trying in the background of a failed start
            raise

    # -- plumbing -----------------------------------------------------------------
    @contextmanager
    def _tx(self):
        """A pooled connection; a database that does not answer (stopped, restarting, the pool
        empty for `timeout`) is StoreUnavailable, whichever statement met it."""
        import psycopg

        try:
            with self.pool.connection() as conn:
                yield conn
        except (psycopg.OperationalError, psycopg.InterfaceError) as e:  # PoolTimeout is an OperationalError
            from . import redacted

            raise StoreUnavailable("postgresql", redacted(str(e), self.dsn)) from None

    def migrate(self) -> int:
        """Apply the migrations this database lacks; -> the schema version now."""
        with self._tx() as conn:
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_ID,))
                conn.execute("CREATE TABLE IF NOT EXISTS fnops_schema (version INTEGER PRIMARY KEY, applied_at "
                             "TIMESTAMPTZ NOT NULL DEFAULT now())")
                have = conn.execute("SELECT COALESCE(MAX(version), 0) FROM fnops_schema").fetchone()[0]
                for version, sql in enumerate(MIGRATIONS, start=1):
                    if version > have:
                        conn.execute(sql)
                        conn.execute("INSERT INTO fnops_schema(version) VALUES (%s)", (version,))
                return len(MIGRATIONS)

    def close(self):
        self.pool.close()

    def healthy(self) -> bool:
        try:
            with self.pool.connection(timeout=2) as conn:
                conn.execute("SELECT 1").fetchone()
                conn.rollback()
            return True
        except Exception:
            return False

    # -- the outbox -------------------------------------------------------------------
    def accept(self, events: list[dict], sinks_for) -> list[tuple[int, bool]]:
        out = []
        with self._tx() as conn:
            with conn.transaction():
                for ev in events:
                    ev.setdefault("receivedAt", time.time())
                    subject = f"{ev.get('function', '')}|{ev.get('environment', '')}"
                    row = conn.execute(
                        "INSERT INTO events(key, subject, body, received_at) VALUES (%s, %s, %s, %s) "
                        "ON CONFLICT (key) DO NOTHING RETURNING id",
                        (ev["key"], subject, json.dumps(ev, sort_keys=True), ev["receivedAt"])).fetchone()
                    if row is None:
                        eid = conn.execute("SELECT id FROM events WHERE key = %s", (ev["key"],)).fetchone()[0]
                        out.append((eid, False))
                        continue
                    eid = row[0]
                    ev["id"] = eid
                    with conn.cursor() as cur:
                        cur.executemany("INSERT INTO deliveries(event_id, sink, subject, updated_at) VALUES (%s, %s, %s, %s)",
                                        [(eid, s, subject, ev["receivedAt"]) for s in sinks_for(ev)])
                    out.append((eid, True))
        return out

    def due(self, sink: str, now: float | None = None, limit: int = 50, lane_id: str = "") -> list[Delivery]:
        """Claim due deliveries of `sink` for `lane_id` (a lease), in order per subject."""
        now = time.time() if now is None else now
        with self._tx() as conn:
            with conn.transaction():
                rows = conn.execute(
                    "SELECT d.event_id, d.attempts FROM deliveries d "
                    "WHERE d.sink = %s AND d.state = 'pending' AND d.next_at <= %s "
                    # a lease of this very lane is work it left when the database went away: its own again
                    "AND (d.lease_until <= %s OR (%s <> '' AND d.lease_owner = %s)) "
                    "AND NOT EXISTS (SELECT 1 FROM deliveries d2 WHERE d2.sink = d.sink AND d2.state = 'pending' "
                    "  AND d2.subject = d.subject AND d2.event_id < d.event_id) "
                    "ORDER BY d.event_id LIMIT %s FOR UPDATE OF d SKIP LOCKED",
                    (sink, now, now, lane_id, lane_id, limit)).fetchall()
                if not rows:
                    return []
                ids = [r[0] for r in rows]
                conn.execute("UPDATE deliveries SET lease_owner = %s, lease_until = %s WHERE sink = %s "
                             "AND event_id = ANY(%s)", (lane_id, now + self.lease, sink, ids))
                bodies = dict(conn.execute("SELECT id, body FROM events WHERE id = ANY(%s)", (ids,)).fetchall())
        return [Delivery(eid, sink, attempts, {**bodies[eid], "id": eid}) for eid, attempts in rows]

    def next_due_at(self, sink: str) -> float | None:
        with self._tx() as conn:
            row = conn.execute("SELECT MIN(GREATEST(next_at, lease_until)) FROM deliveries WHERE sink = %s "
                               "AND state = 'pending'", (sink,)).fetchone()
            conn.rollback()
        return row[0]

    def touch(self, eid: int, sink: str, lane_id: str = "") -> bool:
        """Renew our lease just before an attempt; False if the delivery is no longer ours."""
        with self._tx() as conn:
            with conn.transaction():
                row = conn.execute("UPDATE deliveries SET lease_until = %s WHERE event_id = %s AND sink = %s "
                                   "AND state = 'pending' AND lease_owner = %s RETURNING 1",
                                   (time.time() + self.lease, eid, sink, lane_id)).fetchone()
        return row is not None

    def _finish(self, sql: str, args: tuple, eid: int, sink: str, lane_id: str) -> None:
        with self._tx() as conn:
            with conn.transaction():
                # Only while the lease is ours: after a lease ran out another replica owns the work.
                conn.execute(sql + " WHERE event_id = %s AND sink = %s AND (lease_owner = %s OR %s = '')",
                             (*args, eid, sink, lane_id, lane_id))

    def done(self, eid: int, sink: str, lane_id: str = "") -> None:
        self._finish("UPDATE deliveries SET state = 'done', attempts = attempts + 1, last_error = NULL, "
                     "updated_at = %s, lease_owner = NULL, lease_until = 0", (time.time(),), eid, sink, lane_id)

    def retry(self, eid: int, sink: str, delay: float, error: str, lane_id: str = "") -> None:
        self._finish("UPDATE deliveries SET attempts = attempts + 1, next_at = %s, last_error = %s, updated_at = %s, "
                     "lease_owner = NULL, lease_until = 0", (time.time() + delay, error[:500], time.time()),
                     eid, sink, lane_id)

    def fail(self, eid: int, sink: str, error: str, lane_id: str = "") -> None:
        self._finish("UPDATE deliveries SET state = 'failed', attempts = attempts + 1, last_error = %s, "
                     "updated_at = %s, lease_owner = NULL, lease_until = 0", (error[:500], time.time()),
                     eid, sink, lane_id)

    def requeue(self, targets: list[tuple[int, str | None]]) -> int:
        n = 0
        with self._tx() as conn:
            with conn.transaction():
                for eid, sink in targets:
                    cur = conn.execute(
                        "UPDATE deliveries SET state = 'pending', attempts = 0, next_at = 0, lease_until = 0, "
                        "updated_at = %s WHERE event_id = %s AND state = 'failed'" + (" AND sink = %s" if sink else ""),
                        (time.time(), eid, sink) if sink else (time.time(), eid))
                    n += cur.rowcount
        return n

    # -- idempotency records ---------------------------------------------------------------
    def get(self, ns: str, key: str):
        with self._tx() as conn:
            row = conn.execute("SELECT value FROM kv WHERE ns = %s AND key = %s", (ns, key)).fetchone()
            conn.rollback()
        return row[0] if row else None

    def put(self, ns: str, key: str, value) -> None:
        with self._tx() as conn:
            with conn.transaction():
                conn.execute("INSERT INTO kv(ns, key, value) VALUES (%s, %s, %s) ON CONFLICT (ns, key) "
                             "DO UPDATE SET value = EXCLUDED.value", (ns, key, json.dumps(value, sort_keys=True)))

    def items(self, ns: str) -> list:
        with self._tx() as conn:
            rows = conn.execute("SELECT key, value FROM kv WHERE ns = %s ORDER BY key", (ns,)).fetchall()
            conn.rollback()
        return [(k, v) for k, v in rows]

    def claim(self, ns: str, key: str, value) -> bool:
        with self._tx() as conn:
            with conn.transaction():
                row = conn.execute("INSERT INTO kv(ns, key, value) VALUES (%s, %s, %s) ON CONFLICT DO NOTHING "
                                   "RETURNING 1", (ns, key, json.dumps(value, sort_keys=True))).fetchone()
        return row is not None

    # -- views and retention -------------------------------------------------------------------
    def counts(self) -> dict:
        with self._tx() as conn:
            rows = conn.execute("SELECT sink, state, COUNT(*) FROM deliveries GROUP BY sink, state").fetchall()
            events = conn.execute("SELECT COUNT(*) FROM events").fetchone()[0]
            conn.rollback()
        return {"events": events, "deliveries": {(s, st): n for s, st, n in rows}}

    def pending_events(self) -> int:
        with self._tx() as conn:
            n = conn.execute("SELECT COUNT(DISTINCT event_id) FROM deliveries WHERE state = 'pending'").fetchone()[0]
            conn.rollback()
        return n

    def deliveries(self, state: str | None = None, limit: int = 1000) -> list[tuple]:
        sql = ("SELECT d.event_id, d.sink, d.state, d.attempts, d.last_error, e.key FROM deliveries d "
               "JOIN events e ON e.id = d.event_id")
        args: tuple = ()
        if state:
            sql += " WHERE d.state = %s"
            args = (state,)
        with self._tx() as conn:
            rows = conn.execute(sql + " ORDER BY d.event_id, d.sink LIMIT %s", (*args, limit)).fetchall()
            conn.rollback()
        return [tuple(r) for r in rows]

    def prune(self, older_than: float) -> int:
        with self._tx() as conn:
            with conn.transaction():
                rows = conn.execute(
                    "DELETE FROM events e WHERE received_at < %s AND NOT EXISTS (SELECT 1 FROM deliveries d "
                    "WHERE d.event_id = e.id AND (d.state <> 'done' OR d.updated_at >= %s)) RETURNING id, key",
                    (older_than, older_than)).fetchall()
                for eid, key in rows:
                    conn.execute("DELETE FROM kv WHERE (ns, key) IN (('release', %s), ('rollback-outcome', %s), "
                                 "('canary-outcome', %s), ('slack-reply', %s))", (key, key, key, str(eid)))
                    conn.execute("DELETE FROM kv WHERE ns IN ('github-intent', 'slack-intent') AND key LIKE %s",
                                 (f"{eid}:%",))
        return len(rows)
