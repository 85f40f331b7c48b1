"""function.yaml `traffic:` — the canary's steps and bake time, which the bridge walks
through one Git commit at a time (bridge/canary.py), as Flagger does in a cluster."""

from __future__ import annotations

from . import units
from .check import Checker

BAKE_DEFAULT = 600  # 10m: long enough for the 5m short window of the fast-burn SLO alerts
BAKE_MIN, BAKE_MAX = 1, 86400
MAX_STEPS = 10


def canary_steps(c: Checker, traffic: dict, canary: int | None) -> tuple[int | None, tuple, int]:
    """(first canary percent, every step's percent, bake seconds). `steps` lists the percents
    the new revision gets, the first being `canary`; after the last step's bake the bridge
    promotes (100% new). Without `steps` the canary is one step: [canary]."""
    bake = c.parsed(("traffic", "bakeTime"), traffic.get("bakeTime"), units.whole_seconds, BAKE_MIN, BAKE_MAX)
    raw = traffic.get("steps")
    steps: list[int] = []
    told = len(c.problems)
    if raw is not None:
        if not isinstance(raw, list) or not raw:
            c.fail(("traffic", "steps"), "expected a non-empty list of percents, e.g. [10, 50]")
            raw = []
        elif len(raw) > MAX_STEPS:
            c.fail(("traffic", "steps"), f"{len(raw)} steps; at most {MAX_STEPS}")
            raw = []
        for i, step in enumerate(raw):
            pct = c.integer(("traffic", "steps", i), step, 1, 99)
            if pct is None:
                continue
            if steps and pct <= steps[-1]:
                c.fail(("traffic", "steps", i), f"{pct} does not grow from the step before ({steps[-1]}); steps "
                       "must increase, e.g. [10, 50]")
            steps.append(pct)
        if steps and canary is not None and steps[0] != canary:
            c.fail(("traffic", "steps", 0), f"{steps[0]} is not traffic.canary ({canary}); the first step is the "
                   f"canary's own percent, e.g. steps: [{canary}, …]")
        if canary is None and steps:
            canary = steps[0]
    if canary is None and len(c.problems) == told and "bakeTime" in traffic:
        c.fail(("traffic", "bakeTime"), "is the canary's bake time, but there is no canary: set traffic.canary "
               "(1–99) or traffic.steps")
    if canary is not None and not steps:
        steps = [canary]
    return canary, tuple(steps), BAKE_DEFAULT if bake is None else bake


def next_step(steps: tuple, current: int) -> int | None:
    """The percent after `current`; None: the last step is baked, promote."""
    return next((s for s in steps if s > current), None)


def canary_state(fn, rel) -> dict | None:
    """Where a pin's canary stands, from Git alone (None: no canary split in this pin).
    `since` is when the step was committed; the bridge starts the bake at the sync after it,
    so the bake ends at `since` + bake at the earliest."""
    if fn.canary is None or rel is None or rel.rollback_of or not rel.previous_revision:
        return None
    if rel.revision and rel.revision == rel.previous_revision:
        return None
    if rel.promoted:
        return {"state": "promoted", "percent": 100}
    steps = fn.canary_steps or (fn.canary,)
    current = rel.canary_step or steps[0]
    nxt = next_step(steps, current)
    return {"state": "baking", "percent": current, "next": 100 if nxt is None else nxt,
            "bakeSeconds": fn.bake_seconds, "since": rel.canary_at or rel.released_at}
