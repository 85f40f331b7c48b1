"""What every outbox backend provides (SQLite embedded, PostgreSQL for several replicas).

    accept(events, sinks_for) -> [(event id, new?)]   event + its deliveries, one transaction
    due(sink, now, limit, lane_id) -> [Delivery]      pending and due, in order per subject
    next_due_at(sink) -> epoch | None
    touch(event id, sink, lane_id) -> bool            renew the lease before an attempt (False: not ours)
    done / retry(delay, error) / fail(error)          (event id, sink, lane_id): finish an attempt
    requeue([(event id, sink | None)]) -> n           dead letters back to pending
    get / put / claim(ns, key, value)                 idempotency records and guards
    items(ns) -> [(key, value)]                       every record of a namespace, by key
    counts(), pending_events(), deliveries(state), prune(older_than), healthy(), close()

A database fault in any of these raises StoreUnavailable (below), never the driver's own error.
"""

from __future__ import annotations

import logging
import time
from collections import namedtuple

from ...errors import TemporaryError

# One delivery handed to a sink's lane: the event as accepted, with its id.
Delivery = namedtuple("Delivery", "event_id sink attempts event")


class StoreUnavailable(TemporaryError):
    """The outbox's database did not answer (PostgreSQL restarting, a pool timeout, SQLite
    locked): the one error that means "the store, not the sink". Every backend raises it,
    and only it, for such faults, so a delivery that meets one — in a sink's own records or
    while its outcome is written — stays pending and is tried again once the database is
    back, without counting toward dead-lettering."""

    def __init__(self, backend: str, detail: str):
        super().__init__(f"outbox ({backend}) unavailable: {detail}")
        self.backend, self.detail = backend, detail


def patiently(write, *, within: float = 30.0, stopping=None):
    """write() again while the store is unavailable, backing off up to 2 s, for at most
    `within` seconds. For a record of something already done outside (a Slack post, a
    delivery's outcome): keeping it in hand until the database returns is cheaper, and
    more exact, than doing the thing again. The last StoreUnavailable is raised past that."""
    deadline = time.monotonic() + within
    pause = 0.1
    while True:
        try:
            return write()
        except StoreUnavailable as e:
            if time.monotonic() + pause > deadline or (stopping is not None and stopping.is_set()):
                raise
            if pause == 0.1:
                logging.getLogger("fnops.bridge").warning("%s; holding what was done until it is back", e)
            (stopping.wait if stopping is not None else time.sleep)(pause)
            pause = min(2.0, pause * 2)
