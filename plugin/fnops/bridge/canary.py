"""The canary's bake timers, kept in the outbox's store so they outlive the process.

The canary sink (sinks/canary.py) starts a bake when Argo CD reports the release's step
deployed and healthy: a record per function × environment (`canary-bake`, "<fn>|<env>")
with the time it ends. The Baker thread lists those records twice a second (one record
per bake, no shared index: replicas starting two bakes at once cannot drop one) and, for each bake that has ended — also one that ended while the bridge was
down, at start — puts a `canary-bake-ended` event into the outbox for the canary sink
alone. Its key names the release and the step, so a repeat (another pass, another replica,
a restart) folds into the one event; the decision and the Git commit happen in the canary
sink's lane, with the outbox's retries.
"""

from __future__ import annotations

import time

from .worker import Periodic


NS = "canary-bake"


def subject(fn: str, env: str) -> str:
    return f"{fn}|{env}"


def start_bake(store, fn: str, env: str, record: dict) -> bool:
    """Record a bake unless this release's step is already baking or baked (the first
    deployed event starts the clock; a re-sync does not restart it). True: started."""
    key = subject(fn, env)
    cur = store.get(NS, key)
    # The same release's step again (a re-sync): the clock keeps running. The same image
    # released anew (after an abort rolled it back) is another release: its bake starts over.
    if cur and not cur.get("over") and all(cur.get(k) == record.get(k) for k in ("image", "percent", "releasedAt")):
        return False
    store.put(NS, key, record)
    return True


def end_bake(store, fn: str, env: str, image: str | None = None, **outcome) -> None:
    """The bake of `image` (any, when None) is over: the record stays, marked, as the outcome
    (one per function × environment, replaced by the next bake)."""
    key = subject(fn, env)
    cur = store.get(NS, key)
    if cur and (image is None or cur.get("image") == image) and not cur.get("over"):
        store.put(NS, key, {**cur, "over": True, **outcome})


def bake_ended_event(rec: dict) -> dict:
    fn, env = rec["function"], rec["environment"]
    return {"source": "fnops", "kind": "canary-bake-ended", "function": fn, "environment": env,
            "revision": rec.get("revision", ""), "app": rec.get("app"), "image": rec["image"],
            "percent": rec["percent"], "next": rec["next"], "bakeSeconds": rec["bakeSeconds"],
            "bakeStarted": rec["started"], "cause": rec.get("cause"), "onlySinks": ["canary"],
            "releasedAt": rec.get("releasedAt"),
            "key": f"canary:{fn}:{env}:{rec['image']}:{rec.get('releasedAt') or ''}:{rec['percent']}:baked"}


class Baker(Periodic):
    """Turns ended bakes into outbox events; `accept` is the lanes' accept (store + wake)."""

    what = "canary-baker"

    def __init__(self, store, accept, every: float = 0.5):
        super().__init__(store, every)
        self.accept = accept

    def tick(self, now: float | None = None) -> int:
        now = time.time() if now is None else now
        due = []
        for _, rec in self.store.items(NS):
            if rec and not rec.get("over") and rec.get("due", now + 1) <= now:
                due.append(bake_ended_event(rec))
        if due:
            self.accept(due)
        return len(due)
