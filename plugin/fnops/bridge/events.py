"""Incoming payloads -> normalized events, with the dedupe key that folds repeats."""

from __future__ import annotations

import hashlib
import json

FUNCTION_LABEL = "fnops.dev/function"
ENVIRONMENT_LABEL = "fnops.dev/environment"


class BadPayload(ValueError):
    """400: the message names the field."""


class UnknownApp(ValueError):
    """422: valid JSON, but not an fnops application."""


def _req(obj: dict, key: str, where: str, kind=str):
    if key not in obj or obj[key] is None:
        raise BadPayload(f"missing required field '{where}{key}'")
    if not isinstance(obj[key], kind):
        raise BadPayload(f"field '{where}{key}' must be {'a string' if kind is str else kind.__name__}")
    return obj[key]


def _opt(obj: dict, key: str, kind=str, default=""):
    v = obj.get(key, default)
    return v if isinstance(v, kind) else default


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


def from_argocd(body) -> dict:
    if not isinstance(body, dict):
        raise BadPayload("body must be a JSON object")
    app = _req(body, "app", "")
    labels = _req(body, "labels", "", dict)
    fn, env = labels.get(FUNCTION_LABEL), labels.get(ENVIRONMENT_LABEL)
    if not fn or not env:
        raise UnknownApp(f"application '{app}' has no {FUNCTION_LABEL}/{ENVIRONMENT_LABEL} labels")
    revision = _opt(body, "operationRevision") or _opt(body, "syncRevision")
    phase, health = _opt(body, "phase"), _opt(body, "health")
    kind = argocd_kind(phase, health)
    event = {
        "source": "argocd", "kind": kind, "app": app, "function": fn, "environment": env,
        "revision": revision, "namespace": _opt(body, "destinationNamespace"), "phase": phase, "health": health,
        "syncStatus": _opt(body, "syncStatus"), "message": _opt(body, "message") or _opt(body, "healthMessage"),
        "finishedAt": _opt(body, "finishedAt"), "rollback": bool(body.get("rollback") is True),
        "initiatedBy": _opt(body, "initiatedBy", dict, {}), "images": _opt(body, "images", list, []),
        "argocdUrl": _opt(body, "argocdUrl"),
    }
    # Argo CD may notify the same (app, revision, trigger) more than once: one key folds them.
    event["key"] = f"argocd:{app}:{revision}:{kind}"
    return event


def from_alertmanager(body) -> list[dict]:
    """One event per (function, environment) in the group; alerts without fnops labels are ignored."""
    if not isinstance(body, dict):
        raise BadPayload("body must be a JSON object")
    version = _req(body, "version", "")
    if version != "4":
        raise BadPayload(f"field 'version' must be \"4\" (got {version!r})")
    status = _req(body, "status", "")
    alerts = _req(body, "alerts", "", list)
    group_key = _opt(body, "groupKey")
    by_fn: dict = {}
    for i, a in enumerate(alerts):
        if not isinstance(a, dict):
            raise BadPayload(f"field 'alerts[{i}]' must be an object")
        labels = _req(a, "labels", f"alerts[{i}].", dict)
        _req(a, "status", f"alerts[{i}].")
        fn, env = labels.get("fnops_function"), labels.get("fnops_environment")
        if fn and env:
            by_fn.setdefault((fn, env), []).append(a)
    out = []
    for (fn, env), items in sorted(by_fn.items()):
        firing = [a for a in items if a.get("status") == "firing"]
        kind = "alert-firing" if firing else "alert-resolved"
        sig = json.dumps(sorted((a.get("fingerprint", ""), a.get("startsAt", ""), a.get("status")) for a in items))
        key = f"alertmanager:{group_key}:{fn}:{env}:{status}:{hashlib.sha256(sig.encode()).hexdigest()[:16]}"
        out.append({
            "source": "alertmanager", "kind": kind, "function": fn, "environment": env, "revision": "",
            "alerts": [{"name": a.get("labels", {}).get("alertname", ""), "status": a.get("status"),
                        "summary": (a.get("annotations") or {}).get("summary", ""), "startsAt": a.get("startsAt", ""),
                        "fingerprint": a.get("fingerprint", "")} for a in items],
            "externalURL": _opt(body, "externalURL"), "key": key,
        })
    return out
