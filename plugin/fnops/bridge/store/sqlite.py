"""The durable outbox on SQLite (WAL, synchronous=FULL): the embedded default.

An accepted event and one delivery row per sink are committed in one transaction before
the bridge answers 202. Deliveries move pending -> done | failed; a crash leaves them
pending, and each sink's lane picks its own up again after a restart. `failed` is the dead
letter: it records why, blocks nothing, and `requeue` puts it back. The `kv` table keeps what
makes retries idempotent (Slack message ts, GitHub deployment ids, last statuses, guards).
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from contextlib import contextmanager

from .base import Delivery, StoreUnavailable

# What SQLite says when the file is busy or the disk failed for a moment: the store, not the caller.
_PASSING = ("locked", "busy", "disk i/o error")

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  key TEXT NOT NULL UNIQUE,
  subject TEXT NOT NULL DEFAULT '',
  body TEXT NOT NULL,
  received_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS deliveries (
  event_id INTEGER NOT NULL REFERENCES events(id),
  sink TEXT NOT NULL,
  state TEXT NOT NULL DEFAULT 'pending',
  attempts INTEGER NOT NULL DEFAULT 0,
  next_at REAL NOT NULL DEFAULT 0,
  last_error TEXT,
  updated_at REAL NOT NULL DEFAULT 0,
  PRIMARY KEY (event_id, sink)
);
CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries(sink, state, next_at);
CREATE TABLE IF NOT EXISTS kv (
  ns TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
  PRIMARY KEY (ns, key)
);
"""


class Store:
    name = "sqlite"
    errors = (sqlite3.Error,)  # what a failing outbox raises (a command turns it into one line)

    def __init__(self, path: str):
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        self.db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
        self.lock = threading.Lock()
        with self._locked():
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=FULL")
            self.db.executescript(SCHEMA)
            cols = {r[1] for r in self.db.execute("PRAGMA table_info(deliveries)")}
            if "updated_at" not in cols:  # an outbox written by an earlier fnops
                self.db.execute("ALTER TABLE deliveries ADD COLUMN updated_at REAL NOT NULL DEFAULT 0")

    @contextmanager
    def _locked(self):
        """This process's turn on the connection; a locked or failing database file is
        StoreUnavailable."""
        with self.lock:
            try:
                yield
            except sqlite3.OperationalError as e:
                if any(w in str(e).lower() for w in _PASSING):
                    raise StoreUnavailable("sqlite", str(e)) from None
                raise

    def close(self):
        with self._locked():
            self.db.close()

    def healthy(self) -> bool:
        try:
            with self._locked():
                self.db.execute("SELECT 1").fetchone()
            return True
        except sqlite3.Error:
            return False

    def accept(self, events: list[dict], sinks_for) -> list[tuple[int, bool]]:
        """Store events (folding known keys) with their deliveries; one transaction."""
        out = []
        with self._locked():
            self.db.execute("BEGIN IMMEDIATE")
            try:
                for ev in events:
                    ev.setdefault("receivedAt", time.time())
                    subject = f"{ev.get('function', '')}|{ev.get('environment', '')}"
                    cur = self.db.execute(
                        "INSERT OR IGNORE INTO events(key, subject, body, received_at) VALUES (?, ?, ?, ?)",
                        (ev["key"], subject, json.dumps(ev, sort_keys=True), ev["receivedAt"]))
                    if cur.rowcount == 0:
                        row = self.db.execute("SELECT id FROM events WHERE key = ?", (ev["key"],)).fetchone()
                        out.append((row[0], False))
                        continue
                    eid = cur.lastrowid
                    ev["id"] = eid  # for the caller; due() adds it to what it reads back
                    self.db.executemany("INSERT INTO deliveries(event_id, sink, updated_at) VALUES (?, ?, ?)",
                                        [(eid, s, ev["receivedAt"]) for s in sinks_for(ev)])
                    out.append((eid, True))
                self.db.execute("COMMIT")
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
        return out

    def due(self, sink: str, now: float | None = None, limit: int = 50, lane_id: str = "") -> list[Delivery]:
        """Pending deliveries of one sink whose time has come, in order per (function,
        environment): an earlier event still pending for this sink holds later ones back, so
        a Slack message or a GitHub status never moves backwards. Failed ones hold nothing."""
        now = time.time() if now is None else now
        with self._locked():
            rows = self.db.execute(
                "SELECT d.event_id, d.sink, d.attempts, e.body FROM deliveries d JOIN events e ON e.id = d.event_id "
                "WHERE d.sink = ? AND d.state = 'pending' AND d.next_at <= ? AND NOT EXISTS ("
                "  SELECT 1 FROM deliveries d2 JOIN events e2 ON e2.id = d2.event_id "
                "  WHERE d2.sink = d.sink AND d2.state = 'pending' AND e2.subject = e.subject AND d2.event_id < d.event_id)"
                " ORDER BY d.event_id LIMIT ?", (sink, now, limit)).fetchall()
        return [Delivery(eid, s, attempts, {**json.loads(body), "id": eid}) for eid, s, attempts, body in rows]

    def next_due_at(self, sink: str) -> float | None:
        with self._locked():
            row = self.db.execute("SELECT MIN(next_at) FROM deliveries WHERE sink = ? AND state = 'pending'",
                                  (sink,)).fetchone()
        return row[0]

    def touch(self, eid: int, sink: str, lane_id: str = "") -> bool:
        """One process owns this outbox: a delivery it read is always its own."""
        return True

    def _set(self, sql: str, args) -> None:
        with self._locked():
            self.db.execute(sql, args)

    def done(self, eid: int, sink: str, lane_id: str = "") -> None:
        self._set("UPDATE deliveries SET state='done', attempts=attempts+1, last_error=NULL, updated_at=? "
                  "WHERE event_id=? AND sink=?", (time.time(), eid, sink))

    def retry(self, eid: int, sink: str, delay: float, error: str, lane_id: str = "") -> None:
        self._set("UPDATE deliveries SET attempts=attempts+1, next_at=?, last_error=?, updated_at=? "
                  "WHERE event_id=? AND sink=?", (time.time() + delay, error[:500], time.time(), eid, sink))

    def fail(self, eid: int, sink: str, error: str, lane_id: str = "") -> None:
        self._set("UPDATE deliveries SET state='failed', attempts=attempts+1, last_error=?, updated_at=? "
                  "WHERE event_id=? AND sink=?", (error[:500], time.time(), eid, sink))

    def requeue(self, targets: list[tuple[int, str | None]]) -> int:
        """Failed deliveries back to pending (attempts reset). (event id, sink or None=all)."""
        n = 0
        with self._locked():
            for eid, sink in targets:
                cur = self.db.execute(
                    "UPDATE deliveries SET state='pending', attempts=0, next_at=0, updated_at=? "
                    "WHERE event_id=? AND state='failed'" + (" AND sink=?" if sink else ""),
                    (time.time(), eid, sink) if sink else (time.time(), eid))
                n += cur.rowcount
        return n

    def get(self, ns: str, key: str):
        with self._locked():
            row = self.db.execute("SELECT value FROM kv WHERE ns=? AND key=?", (ns, key)).fetchone()
        return json.loads(row[0]) if row else None

    def put(self, ns: str, key: str, value) -> None:
        self._set("INSERT INTO kv(ns, key, value) VALUES (?, ?, ?) ON CONFLICT(ns, key) DO UPDATE SET value=excluded.value",
                  (ns, key, json.dumps(value, sort_keys=True)))

    def items(self, ns: str) -> list:
        with self._locked():
            rows = self.db.execute("SELECT key, value FROM kv WHERE ns=? ORDER BY key", (ns,)).fetchall()
        return [(k, json.loads(v)) for k, v in rows]

    def claim(self, ns: str, key: str, value) -> bool:
        """Set `key` only if absent (a guard that holds across restarts). True if we set it."""
        with self._locked():
            cur = self.db.execute("INSERT OR IGNORE INTO kv(ns, key, value) VALUES (?, ?, ?)",
                                  (ns, key, json.dumps(value, sort_keys=True)))
        return cur.rowcount == 1

    def counts(self) -> dict:
        with self._locked():
            rows = self.db.execute("SELECT sink, state, COUNT(*) FROM deliveries GROUP BY sink, state").fetchall()
            events = self.db.execute("SELECT COUNT(*) FROM events").fetchone()[0]
        return {"events": events, "deliveries": {(s, st): n for s, st, n in rows}}

    def pending_events(self) -> int:
        with self._locked():
            return self.db.execute("SELECT COUNT(DISTINCT event_id) FROM deliveries WHERE state = 'pending'").fetchone()[0]

    def deliveries(self, state: str | None = None, limit: int = 1000) -> list[tuple]:
        """(event id, sink, state, attempts, last error, event key) rows, oldest first."""
        sql = ("SELECT d.event_id, d.sink, d.state, d.attempts, d.last_error, e.key FROM deliveries d "
               "JOIN events e ON e.id = d.event_id")
        args: tuple = ()
        if state:
            sql += " WHERE d.state = ?"
            args = (state,)
        with self._locked():
            return self.db.execute(sql + " ORDER BY d.event_id, d.sink LIMIT ?", (*args, limit)).fetchall()

    def prune(self, older_than: float) -> int:
        """Forget events every sink has delivered before `older_than` (epoch seconds), and the
        per-event idempotency records that only they used. Failed or pending ones stay."""
        with self._locked():
            self.db.execute("BEGIN IMMEDIATE")
            try:
                rows = self.db.execute(
                    "SELECT id, key FROM events e WHERE received_at < ? AND NOT EXISTS ("
                    "  SELECT 1 FROM deliveries d WHERE d.event_id = e.id AND (d.state != 'done' OR d.updated_at >= ?))",
                    (older_than, older_than)).fetchall()
                for eid, key in rows:
                    self.db.execute("DELETE FROM deliveries WHERE event_id = ?", (eid,))
                    self.db.execute("DELETE FROM events WHERE id = ?", (eid,))
                    self.db.executemany("DELETE FROM kv WHERE ns = ? AND key = ?",
                                        [("release", key), ("rollback-outcome", key), ("canary-outcome", key),
                                         ("slack-reply", str(eid))])
                    self.db.execute("DELETE FROM kv WHERE ns IN ('github-intent', 'slack-intent') AND key LIKE ?",
                                    (f"{eid}:%",))
                self.db.execute("COMMIT")
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
        return len(rows)
