"""What every outbox backend provides (SQLite embedded, PostgreSQL for several replicas).

    accept(events, sinks_for) -> [(event id, new?)]   event + its deliveries, one transaction
    due(sink, now, limit, lane_id) -> [Delivery]      pending and due, in order per subject
    next_due_at(sink) -> epoch | None
    touch(event id, sink, lane_id) -> bool            renew the lease before an attempt (False: not ours)
    done / retry(delay, error) / fail(error)          (event id, sink, lane_id): finish an attempt
    requeue([(event id, sink | None)]) -> n           dead letters back to pending
    get / put / claim(ns, key, value)                 idempotency records and guards
    counts(), pending_events(), deliveries(state), prune(older_than), healthy(), close()
"""

from __future__ import annotations

from collections import namedtuple

# One delivery handed to a sink's lane: the event as accepted, with its id.
Delivery = namedtuple("Delivery", "event_id sink attempts event")
