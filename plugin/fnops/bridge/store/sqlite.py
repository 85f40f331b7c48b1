"""The durable outbox (SQLite, WAL, synchronous=FULL).

An accepted event and one delivery row per sink are committed in one transaction before
the bridge answers 202. Deliveries move pending -> done | failed; a crash leaves them
pending, and the worker picks them up again after a restart. The `kv` table keeps what
makes retries idempotent (Slack message ts, GitHub deployment ids, last statuses).
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time

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
  PRIMARY KEY (event_id, sink)
);
CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries(state, next_at);
CREATE TABLE IF NOT EXISTS kv (
  ns TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
  PRIMARY KEY (ns, key)
);
"""


class Store:
    def __init__(self, path: str):
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        self.db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
        self.lock = threading.Lock()
        with self.lock:
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=FULL")
            self.db.executescript(SCHEMA)

    def close(self):
        with self.lock:
            self.db.close()

    def accept(self, events: list[dict], sinks_for) -> list[tuple[int, bool]]:
        """Store events (folding known keys) with their deliveries; one transaction."""
        out = []
        with self.lock:
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
                    self.db.executemany("INSERT INTO deliveries(event_id, sink) VALUES (?, ?)",
                                        [(eid, s) for s in sinks_for(ev)])
                    out.append((eid, True))
                self.db.execute("COMMIT")
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
        return out

    def due(self, now: float | None = None, limit: int = 100) -> list[tuple[int, str, int, dict]]:
        """Pending deliveries whose time has come — in order per (sink, function, environment):
        an earlier event still waiting for that sink holds the later ones back, so a Slack
        message or a GitHub status never moves backwards."""
        now = time.time() if now is None else now
        with self.lock:
            rows = self.db.execute(
                "SELECT d.event_id, d.sink, d.attempts, e.body FROM deliveries d JOIN events e ON e.id = d.event_id "
                "WHERE d.state = 'pending' AND d.next_at <= ? AND NOT EXISTS ("
                "  SELECT 1 FROM deliveries d2 JOIN events e2 ON e2.id = d2.event_id "
                "  WHERE d2.state = 'pending' AND d2.sink = d.sink AND e2.subject = e.subject AND d2.event_id < d.event_id)"
                " ORDER BY d.event_id, d.sink LIMIT ?", (now, limit)).fetchall()
        return [(eid, sink, attempts, {**json.loads(body), "id": eid}) for eid, sink, attempts, body in rows]

    def next_due_at(self) -> float | None:
        with self.lock:
            row = self.db.execute("SELECT MIN(next_at) FROM deliveries WHERE state = 'pending'").fetchone()
        return row[0]

    def _set(self, sql: str, args) -> None:
        with self.lock:
            self.db.execute(sql, args)

    def done(self, eid: int, sink: str) -> None:
        self._set("UPDATE deliveries SET state='done', attempts=attempts+1, last_error=NULL WHERE event_id=? AND sink=?",
                  (eid, sink))

    def retry(self, eid: int, sink: str, delay: float, error: str) -> None:
        self._set("UPDATE deliveries SET attempts=attempts+1, next_at=?, last_error=? WHERE event_id=? AND sink=?",
                  (time.time() + delay, error[:500], eid, sink))

    def fail(self, eid: int, sink: str, error: str) -> None:
        self._set("UPDATE deliveries SET state='failed', attempts=attempts+1, last_error=? WHERE event_id=? AND sink=?",
                  (error[:500], eid, sink))

    def get(self, ns: str, key: str):
        with self.lock:
            row = self.db.execute("SELECT value FROM kv WHERE ns=? AND key=?", (ns, key)).fetchone()
        return json.loads(row[0]) if row else None

    def put(self, ns: str, key: str, value) -> None:
        self._set("INSERT INTO kv(ns, key, value) VALUES (?, ?, ?) ON CONFLICT(ns, key) DO UPDATE SET value=excluded.value",
                  (ns, key, json.dumps(value, sort_keys=True)))

    def claim(self, ns: str, key: str, value) -> bool:
        """Set `key` only if absent (a guard that holds across restarts). True if we set it."""
        with self.lock:
            cur = self.db.execute("INSERT OR IGNORE INTO kv(ns, key, value) VALUES (?, ?, ?)",
                                  (ns, key, json.dumps(value, sort_keys=True)))
        return cur.rowcount == 1

    def counts(self) -> dict:
        with self.lock:
            rows = self.db.execute("SELECT sink, state, COUNT(*) FROM deliveries GROUP BY sink, state").fetchall()
            events = self.db.execute("SELECT COUNT(*) FROM events").fetchone()[0]
        return {"events": events, "deliveries": {(s, st): n for s, st, n in rows}}

    def deliveries(self) -> list[tuple]:
        with self.lock:
            return self.db.execute("SELECT event_id, sink, state, attempts, last_error FROM deliveries "
                                   "ORDER BY event_id, sink").fetchall()
