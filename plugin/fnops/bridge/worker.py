"""Delivery lanes: one thread per sink, so a hanging GitHub delays neither Slack nor a
rollback. Order is kept per (sink, function, environment) only — by the store's `due`.

Temporary errors back off exponentially (jittered, capped) or wait the Retry-After the
other side sent, up to `delivery.maxAttempts`; then, like a permanent error, the delivery
goes to `failed` (the dead letter) with its reason, visible in /metrics and
`fnops bridge deliveries`, replayable with `fnops bridge retry`. An unexpected exception is
a poison event: it is failed at once instead of holding its function's later events back.

The outbox's own database failing (StoreUnavailable: PostgreSQL restarting, SQLite locked)
is neither: whether it met a sink's records or the writing of an outcome, the delivery stays
pending with its attempts untouched, the lane backs off (0.5 s doubling to 5 s) and tries
again once the database answers — an outage never dead-letters anything. An outcome already
known (the sink succeeded) is held and written once the database is back, rather than
doing the delivery again.
Sinks may return follow-up events (a rollback's outcome), which enter the outbox like any other.
"""

from __future__ import annotations

import logging
import random
import threading
import time

from ..errors import PermanentError, TemporaryError
from .store.base import StoreUnavailable, patiently

log = logging.getLogger("fnops.bridge")


def backoff(attempts: int, cap: float) -> float:
    return min(cap, 2.0 ** attempts) * random.uniform(0.8, 1.2)


STORE_BACKOFF = (0.5, 5.0)  # first and longest pause of a lane while its database is away


class Lane(threading.Thread):
    def __init__(self, sink, store, ctx, metrics, accept_followups, *, max_attempts: int = 12,
                 max_backoff: float = 300.0, lane_id: str = ""):
        super().__init__(name=f"fnops-lane-{sink.name}", daemon=True)
        self.sink, self.store, self.ctx, self.metrics = sink, store, ctx, metrics
        self.accept_followups = accept_followups
        self.max_attempts, self.max_backoff, self.lane_id = max_attempts, max_backoff, lane_id
        self.wakeup = threading.Event()
        self.stopping = threading.Event()
        self.beat = time.monotonic()  # the last time the loop came round (readiness)
        self.store_pause = 0.0  # > 0 while the database is away: the next pause

    def wake(self) -> None:
        self.wakeup.set()

    def stop(self) -> None:
        self.stopping.set()
        self.wakeup.set()

    def run(self) -> None:
        while not self.stopping.is_set():
            self.beat = time.monotonic()
            try:
                worked = self.step()
                self.store_pause = 0.0
            except StoreUnavailable as e:  # the database is away: nothing was lost, wait and go on
                self.store_down(e)
                continue
            except Exception:  # the store itself failed otherwise: wait, then go on
                log.exception("%s lane: outbox unavailable; retrying", self.sink.name)
                worked = False
                self.wakeup.wait(1.0)
            if not worked:
                try:
                    nxt = self.store.next_due_at(self.sink.name)
                except Exception:
                    nxt = None
                wait = 1.0 if nxt is None else max(0.05, min(1.0, nxt - time.time()))
                self.wakeup.wait(wait)
                self.wakeup.clear()

    def store_down(self, e: StoreUnavailable) -> None:
        first, cap = STORE_BACKOFF
        if not self.store_pause:
            log.warning("%s lane: %s; deliveries stay pending until it is back", self.sink.name, e)
        self.store_pause = min(cap, self.store_pause * 2) if self.store_pause else first
        self.stopping.wait(self.store_pause * random.uniform(0.8, 1.2))

    def step(self) -> bool:
        items = self.store.due(self.sink.name, lane_id=self.lane_id)
        if not items:
            return False
        if hasattr(self.sink, "deliver_batch") and len(items) > 1:
            self._run(items)
        else:
            for item in items:
                if self.stopping.is_set():
                    break
                self._run([item])
        return True

    def _run(self, items) -> None:
        """Deliver one event, or a batch to a sink that takes batches (the audit log)."""
        name = self.sink.name
        items = [d for d in items if self.store.touch(d.event_id, name, lane_id=self.lane_id)]
        if not items:
            return
        try:
            if len(items) > 1:
                followups = self.sink.deliver_batch([d.event for d in items], self.ctx)
            else:
                followups = self.sink.deliver(items[0].event, self.ctx)
        except StoreUnavailable:
            # Raised through a sink from its own records: not the sink's answer. The deliveries
            # stay pending (and leased to this lane, which takes them up again) — run() waits.
            self.metrics.delivered(name, "retry", len(items))
            raise
        except TemporaryError as e:
            for d in items:
                if d.attempts + 1 >= self.max_attempts:
                    self._dead(d, f"gave up after {d.attempts + 1} attempts: {e}")
                    continue
                delay = e.retry_after if e.retry_after is not None else backoff(d.attempts, self.max_backoff)
                self.store.retry(d.event_id, name, delay, str(e), lane_id=self.lane_id)
                self.metrics.delivered(name, "retry")
            log.warning("%s: temporary: %s (retrying)", name, e)
            return
        except PermanentError as e:
            for d in items:
                self._dead(d, str(e))
            return
        except Exception as e:  # a bug or a poison event: never retried blindly, never blocking
            log.exception("%s: unexpected error; delivery failed (replay with `fnops bridge retry`)", name)
            for d in items:
                self._dead(d, f"unexpected {type(e).__name__}: {e}")
            return
        # The sink did its part: its outcome is kept in hand through a database outage, so it is
        # written once the database is back instead of the delivery being done again.
        if followups:
            patiently(lambda: self.accept_followups(followups), stopping=self.stopping)
        now = time.time()
        for d in items:
            patiently(lambda: self.store.done(d.event_id, name, lane_id=self.lane_id), stopping=self.stopping)
            self.metrics.delivered(name, "done")
            self.metrics.latency.labels(name).observe(max(0.0, now - d.event.get("receivedAt", now)))

    def _dead(self, d, reason: str) -> None:
        patiently(lambda: self.store.fail(d.event_id, self.sink.name, reason, lane_id=self.lane_id),
                  stopping=self.stopping)
        self.metrics.delivered(self.sink.name, "failed")
        log.error("%s: delivery of event %s failed: %s", self.sink.name, d.event_id, reason)


class Periodic(threading.Thread):
    """A background chore on the store every `every` seconds (`tick`). A database away is a
    warning and the next pass tries again; anything else is logged whole, and the chore goes on."""

    what = "chore"

    def __init__(self, store, every: float):
        super().__init__(name=f"fnops-{self.what}", daemon=True)
        self.store, self.every = store, every
        self.stopping = threading.Event()

    def stop(self) -> None:
        self.stopping.set()

    def run(self) -> None:
        while not self.stopping.wait(self.every):
            try:
                self.tick()
            except StoreUnavailable as e:
                log.warning("%s: %s; will try again", self.what, e)
            except Exception:
                log.exception("%s failed; will try again", self.what)

    def tick(self):
        raise NotImplementedError


class Janitor(Periodic):
    """Prunes delivered events past the retention age, every few minutes."""

    what = "janitor"

    def __init__(self, store, keep_seconds: float, every: float = 300.0):
        super().__init__(store, every)
        self.keep = keep_seconds

    def tick(self) -> None:
        n = self.store.prune(time.time() - self.keep)
        if n:
            log.info("pruned %d delivered events", n)


class Lanes:
    """Every sink's lane, started and stopped together."""

    def __init__(self, sinks: dict, store, ctx, metrics, sinks_for, delivery_cfg, lane_id: str = ""):
        self.store, self.sinks_for = store, sinks_for
        self.lanes = {name: Lane(s, store, ctx, metrics, self.accept, max_attempts=delivery_cfg.max_attempts,
                                 max_backoff=delivery_cfg.max_backoff, lane_id=lane_id)
                      for name, s in sinks.items()}

    def accept(self, events) -> None:
        self.store.accept(events, self.sinks_for)
        self.wake()

    def wake(self) -> None:
        for lane in self.lanes.values():
            lane.wake()

    def start(self) -> None:
        for lane in self.lanes.values():
            lane.start()

    def stop(self) -> None:
        for lane in self.lanes.values():
            lane.stop()

    def join(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        for lane in self.lanes.values():
            lane.join(max(0.0, deadline - time.monotonic()))

    def alive(self) -> bool:
        return all(lane.is_alive() for lane in self.lanes.values())
