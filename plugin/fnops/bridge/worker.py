"""Delivers the outbox: every pending (event, sink) until done or permanently failed.

Temporary errors back off exponentially (with jitter, capped) or wait the Retry-After the
other side sent; permanent ones stop that one delivery, are logged and counted, and leave
every other delivery alone. Sinks may return follow-up events (a rollback's outcome),
which go into the outbox like any other."""

from __future__ import annotations

import logging
import random
import threading
import time

from ..errors import PermanentError, TemporaryError

log = logging.getLogger("fnops.bridge")
MAX_BACKOFF = 300.0


def backoff(attempts: int) -> float:
    return min(MAX_BACKOFF, 2.0 ** attempts) * random.uniform(0.8, 1.2)


class Worker(threading.Thread):
    def __init__(self, store, sinks: dict, ctx, metrics, sinks_for):
        super().__init__(name="fnops-outbox", daemon=True)
        self.store, self.sinks, self.ctx, self.metrics, self.sinks_for = store, sinks, ctx, metrics, sinks_for
        self.wakeup = threading.Event()
        self.stopping = threading.Event()

    def wake(self) -> None:
        self.wakeup.set()

    def stop(self) -> None:
        self.stopping.set()
        self.wakeup.set()

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                worked = self.step()
            except Exception:  # never let the loop die: the outbox keeps the work
                log.exception("outbox step failed")
                worked = False
            if not worked:
                nxt = self.store.next_due_at()
                wait = 1.0 if nxt is None else max(0.05, min(1.0, nxt - time.time()))
                self.wakeup.wait(wait)
                self.wakeup.clear()

    def step(self) -> bool:
        rows = self.store.due()
        if not rows:
            return False
        batches: dict = {}
        for eid, sink, attempts, event in rows:
            batches.setdefault(sink, []).append((eid, attempts, event))
        for sink_name, items in batches.items():
            sink = self.sinks.get(sink_name)
            if sink is None:
                for eid, _, _ in items:
                    self.store.fail(eid, sink_name, "sink not configured")
                continue
            if hasattr(sink, "deliver_batch") and len(items) > 1:
                self._run(sink, items)
            else:
                for item in items:
                    self._run(sink, [item])
            if self.stopping.is_set():
                break
        return True

    def _run(self, sink, items) -> None:
        """Deliver one event, or a batch to a sink that takes batches (the audit log)."""
        try:
            if len(items) > 1:
                followups = sink.deliver_batch([e for _, _, e in items], self.ctx)
            else:
                followups = sink.deliver(items[0][2], self.ctx)
        except TemporaryError as e:
            for eid, attempts, _ in items:
                delay = e.retry_after if e.retry_after is not None else backoff(attempts)
                self.store.retry(eid, sink.name, delay, str(e))
                self.metrics.inc("fnops_bridge_deliveries_total", sink=sink.name, result="retry")
            log.warning("%s: temporary: %s (retrying)", sink.name, e)
            return
        except PermanentError as e:
            for eid, _, _ in items:
                self.store.fail(eid, sink.name, str(e))
                self.metrics.inc("fnops_bridge_deliveries_total", sink=sink.name, result="failed")
            log.error("%s: permanent: %s (not retrying)", sink.name, e)
            return
        except Exception as e:
            for eid, attempts, _ in items:
                self.store.retry(eid, sink.name, backoff(attempts), f"{type(e).__name__}: {e}")
                self.metrics.inc("fnops_bridge_deliveries_total", sink=sink.name, result="retry")
            log.exception("%s: unexpected error (retrying)", sink.name)
            return
        if followups:
            self.store.accept(followups, self.sinks_for)
        for eid, _, _ in items:
            self.store.done(eid, sink.name)
            self.metrics.inc("fnops_bridge_deliveries_total", sink=sink.name, result="done")
