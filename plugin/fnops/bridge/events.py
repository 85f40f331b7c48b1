"""Incoming payloads -> normalized events, with the dedupe key that folds repeats.

Every field is read through `door.Fields`: typed, bounded, names as DNS labels, revisions
as full SHAs. What an event keeps is small and plain, so the outbox stays bounded and no
sink ever sees a value of a type it did not expect."""

from __future__ import annotations

import hashlib
import json

from .door import BadPayload, Fields

FUNCTION_LABEL = "fnops.dev/function"
ENVIRONMENT_LABEL = "fnops.dev/environment"
# The fast-burn SLO alerts fnops renders (render/slo.py); only these may roll a release back.
# The slow-burn ones (Fnops*SlowBurn) reach Slack and the audit log but never roll back.
SLO_ALERTS = ("FnopsErrorBudgetFastBurn", "FnopsLatencyBudgetFastBurn")
PHASES = ("", "Running", "Terminating", "Failed", "Error", "Succeeded")
HEALTH = ("", "Healthy", "Progressing", "Degraded", "Suspended", "Missing", "Unknown")

__all__ = ["BadPayload", "UnknownApp", "from_argocd", "from_alertmanager", "SLO_ALERTS"]


class UnknownApp(ValueError):
    """422: valid JSON, but not an fnops application."""


def argocd_kind(phase: str, health: str) -> str:
    if phase in ("Error", "Failed"):
        return "sync-failed"
    if health == "Degraded":
        return "degraded"
    if phase in ("Running", "Terminating"):
        return "syncing"
    if phase == "Succeeded" and health == "Healthy":
        return "deployed"
    if phase == "Succeeded":
        return "syncing"  # synced, not yet healthy (Progressing)
    return "unknown"


def _choice(f: Fields, key: str, choices) -> str:
    v = f.text(key, max_len=32)
    if v not in choices:
        raise BadPayload(f"field '{key}' must be one of {', '.join(c for c in choices if c)}")
    return v


def from_argocd(body) -> dict:
    f = Fields(body)
    app = f.text("app", required=True, max_len=253)
    labels = Fields(f.mapping("labels", required=True), "labels.")
    raw_fn, raw_env = labels.obj.get(FUNCTION_LABEL), labels.obj.get(ENVIRONMENT_LABEL)
    if not raw_fn or not raw_env:
        raise UnknownApp(f"the application has no {FUNCTION_LABEL}/{ENVIRONMENT_LABEL} labels")
    fn, env = labels.label(FUNCTION_LABEL), labels.label(ENVIRONMENT_LABEL)
    revision = f.revision("operationRevision") or f.revision("syncRevision")
    phase, health = _choice(f, "phase", PHASES), _choice(f, "health", HEALTH)
    kind = argocd_kind(phase, health)
    initiated = Fields(f.mapping("initiatedBy", max_items=8), "initiatedBy.")
    images = [i for i in f.items("images", max_items=64) if isinstance(i, str) and len(i) <= 512]
    event = {
        "source": "argocd", "kind": kind, "app": app, "function": fn, "environment": env,
        "revision": revision, "namespace": f.text("destinationNamespace", max_len=63),
        "appNamespace": f.text("appNamespace", max_len=63), "phase": phase,
        "health": health, "syncStatus": f.text("syncStatus", max_len=32),
        "message": f.free_text("message") or f.free_text("healthMessage"),
        "finishedAt": f.text("finishedAt", max_len=64), "rollback": f.flag("rollback"),
        "initiatedBy": {"username": initiated.text("username", max_len=256), "automated": initiated.flag("automated")},
        "images": images,
    }
    # Argo CD may notify the same (app, revision, trigger) more than once: one key folds them.
    event["key"] = f"argocd:{app}:{revision}:{kind}"
    return event


def from_alertmanager(body, admit=None, ignored: list | None = None) -> list[dict]:
    """One event per (function, environment) in the group; alerts without fnops labels are
    ignored, and so is an alert `admit(function, environment, labels)` gives a reason
    against (the reason is added to `ignored`)."""
    f = Fields(body)
    version = f.text("version", required=True, max_len=8)
    if version != "4":
        raise BadPayload("field 'version' must be \"4\"")
    status = _choice(f, "status", ("firing", "resolved"))
    alerts = f.items("alerts", required=True)
    group_key = f.text("groupKey", max_len=1024)
    by_fn: dict = {}
    for i, a in enumerate(alerts):
        af = Fields(a, f"alerts[{i}].")
        labels = af.string_map("labels", required=True)
        a_status = af.text("status", required=True, max_len=16)
        if a_status not in ("firing", "resolved"):
            raise BadPayload(f"field 'alerts[{i}].status' must be firing or resolved")
        if not labels.get("fnops_function") or not labels.get("fnops_environment"):
            continue
        lf = Fields(labels, f"alerts[{i}].labels.")
        key = (lf.label("fnops_function"), lf.label("fnops_environment"))
        ann = af.string_map("annotations")
        why = admit(*key, labels) if admit else None
        if why:
            if ignored is not None:
                ignored.append(why)
            continue
        by_fn.setdefault(key, []).append({
            "name": labels.get("alertname", "")[:256], "status": a_status,
            "namespace": labels.get("namespace", "")[:63],
            "summary": ann.get("summary", "")[:500], "startsAt": af.text("startsAt", max_len=64),
            "fingerprint": af.text("fingerprint", max_len=64)})
    out = []
    for (fn, env), items in sorted(by_fn.items()):
        firing = [a for a in items if a["status"] == "firing"]
        kind = "alert-firing" if firing else "alert-resolved"
        sig = json.dumps(sorted((a["fingerprint"], a["startsAt"], a["status"]) for a in items))
        gk = hashlib.sha256(group_key.encode()).hexdigest()[:16]
        key = f"alertmanager:{gk}:{fn}:{env}:{status}:{hashlib.sha256(sig.encode()).hexdigest()[:16]}"
        out.append({"source": "alertmanager", "kind": kind, "function": fn, "environment": env, "revision": "",
                    "alerts": items, "key": key})
    return out
