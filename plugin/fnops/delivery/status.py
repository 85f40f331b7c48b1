"""`fnops status`: what is pinned where — functions × environments."""

from __future__ import annotations

import os

from .. import yamldoc
from ..errors import SpecError
from ..spec import load_function, load_release_for
from ..spec.function import environments_of


def _staleness(history, head, functions_dir, name, commit):
    """True: the folder changed since the pinned source; False: it did not; None: unknown."""
    if history is None or head is None or not commit:
        return None
    if commit == head:
        return False
    changed = history.changed_folders(commit, head, functions_dir)
    return None if changed is None else name in changed


def collect(root: str, functions_dir: str, history=None, head: str | None = None) -> list[dict]:
    """One row per function × environment. With `history` (the source clone) and `head`,
    each pin is marked `stale` when its folder changed after the source it records."""
    base = os.path.join(root, functions_dir)
    rows = []
    for name in sorted(os.listdir(base)) if os.path.isdir(base) else []:
        folder = os.path.join(base, name)
        if not os.path.isfile(os.path.join(folder, "function.yaml")):
            continue
        try:
            envs = environments_of(yamldoc.load(os.path.join(folder, "function.yaml"), root=folder), folder)
        except SpecError as e:
            rows.append({"function": name, "environment": "", "image": None, "problem": str(e.problems[0])})
            continue
        if not envs:  # never shipped and no overlay: still a function, shown as not pinned anywhere
            rows.append({"function": name, "environment": "", "image": None, "sourceCommit": None, "releasedAt": None,
                         "rollbackOf": None, "problem": None, "stale": None, "note": "not pinned in any environment"})
        for env in envs:
            row = {"function": name, "environment": env, "image": None, "sourceCommit": None,
                   "releasedAt": None, "rollbackOf": None, "problem": None, "stale": None}
            try:
                fn = load_function(folder, env)
                if os.path.exists(os.path.join(folder, "releases", f"{env}.yaml")):
                    rel = load_release_for(fn)
                    row.update(image=str(rel.image), sourceCommit=rel.source_commit, releasedAt=rel.released_at,
                               rollbackOf=rel.rollback_of,
                               stale=_staleness(history, head, functions_dir, name, rel.source_commit))
                    canary = _canary(fn, rel)
                    if canary:
                        row["canary"] = canary
            except SpecError as e:
                row["problem"] = str(e.problems[0])
            rows.append(row)
    return rows


def _canary(fn, rel, now: float | None = None) -> dict | None:
    """The canary's state from the pin, with the time left in its bake. The bridge starts the
    bake when Argo CD reports the step deployed, which is after the commit this counts from:
    `timeLeft` is the least the step still waits."""
    import time

    from ..spec.canary import canary_state
    from ..spec.units import utc_seconds

    state = canary_state(fn, rel)
    if state is None or state["state"] != "baking":
        return state
    since = utc_seconds(state.get("since"))
    if since is not None:
        left = since + state["bakeSeconds"] - (time.time() if now is None else now)
        state["timeLeft"] = max(0, int(left))
    return state


def _canary_note(c: dict) -> str:
    if c["state"] == "promoted":
        return "canary promoted (100%)"
    left = c.get("timeLeft")
    wait = ("bake time unknown" if left is None else f"≥{left}s of bake left" if left else
            "bake over once synced: the bridge moves it")
    return f"canary {c['percent']}% → {c['next']}%, {wait}"


def table(rows: list[dict]) -> str:
    from .pins import short

    head = ("FUNCTION", "ENV", "IMAGE", "SOURCE", "RELEASED", "NOTE")
    body = []
    for r in rows:
        notes = [r["problem"]] if r["problem"] else []
        if r.get("note"):
            notes.append(r["note"])
        if r.get("rollbackOf"):
            notes.append(f"rollback of {short(r['rollbackOf'])}")
        if r.get("stale"):
            notes.append("stale: folder changed since this source")
        if r.get("canary"):
            notes.append(_canary_note(r["canary"]))
        note = "; ".join(notes)
        body.append((r["function"], r["environment"] or "-", short(r["image"]) if r["image"] else "(not pinned)",
                     (r.get("sourceCommit") or "")[:7] or "-", r.get("releasedAt") or "-", note))
    widths = [max(len(str(x[i])) for x in [head, *body]) for i in range(len(head))]
    return "\n".join("  ".join(str(c).ljust(w) for c, w in zip(line, widths)).rstrip() for line in [head, *body])
