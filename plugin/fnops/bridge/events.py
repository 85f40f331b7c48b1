"""Incoming payloads -> normalized events, with the dedupe key that folds repeats.

Every field is read through `door.Fields`: typed, bounded, names as DNS labels, revisions
as full SHAs. What an event keeps is small and plain, so the outbox stays bounded and no
sink ever sees a value of a type it did not expect."""

from __future__ import annotations

import datetime as dt
import hashlib
import json

from ..lazyre import LazyRe
from ..types import GitSha
from .door import BadPayload, Fields

FUNCTION_LABEL = "fnops.dev/function"
ENVIRONMENT_LABEL = "fnops.dev/environment"
# The fast-burn SLO alerts fnops renders (render/slo.py); only these may roll a release back.
# The slow-burn ones (Fnops*SlowBurn) reach Slack and the audit log but never roll back.
SLO_ALERTS = ("FnopsErrorBudgetFastBurn", "FnopsLatencyBudgetFastBurn")
PHASES = ("", "Running", "Terminating", "Failed", "Error", "Succeeded")
HEALTH = ("", "Healthy", "Progressing", "Degraded", "Suspended", "Missing", "Unknown")
# One trigger and template per event (notifications/argocd-notifications-cm.yaml); the
# template names it, the bridge never infers it from the state.
ARGOCD_EVENTS = ("syncing", "deployed", "degraded", "sync-failed", "render-failed")
# The objects fnops renders that run the release's image (render: Knative Service or, for
# deployer: keda, a Deployment, both named after the function).
WORKLOADS = (("serving.knative.dev", "Service"), ("apps", "Deployment"))
TIMESTAMP = LazyRe(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d)")
# The CMP's stderr at the end of a ComparisonError, however each Argo CD version wraps it:
# cmpserver's CmdError is "`<command>` failed <cause>: <stderr>" (cmpserver/plugin/plugin.go).
CMP_FAILED = LazyRe(r"(?s)`([^`]*)` failed ((?:exit status \d+|signal: [\w ]+))(?:: (.*))?")

__all__ = ["BadPayload", "UnknownApp", "from_argocd", "from_alertmanager", "SLO_ALERTS", "ARGOCD_EVENTS"]


class UnknownApp(ValueError):
    """422: valid JSON, but not an fnops application."""


def _choice(f: Fields, key: str, choices) -> str:
    v = f.text(key, max_len=32)
    if v not in choices:
        raise BadPayload(f"field '{key}' must be one of {', '.join(c for c in choices if c)}")
    return v


def _timestamp(f: Fields, key: str) -> str:
    """A metav1.Time as Argo CD writes it (RFC 3339), or ""."""
    v = f.text(key, max_len=40)
    if v and not TIMESTAMP.fullmatch(v):
        raise BadPayload(f"field {f._name(key)} must be an RFC 3339 time")
    return v


def epoch(ts: str) -> float | None:
    if not ts:
        return None
    try:
        return dt.datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _sha_or_empty(f: Fields, key: str) -> str:
    """A revision that may be a branch name (a failed comparison keeps targetRevision): "" then."""
    v = f.text(key, max_len=256)
    try:
        return str(GitSha(v)) if v else ""
    except ValueError:
        return ""


def _history(f: Fields) -> list[dict]:
    out = []
    for i, h in enumerate(f.items("history", max_items=100)):
        hf = Fields(h, f"history[{i}].")
        hid = hf.obj.get("id", 0)
        if not isinstance(hid, int) or isinstance(hid, bool):
            raise BadPayload(f"field 'history[{i}].id' must be an integer")
        out.append({"id": hid, "revision": hf.revision("revision"), "startedAt": _timestamp(hf, "deployStartedAt")})
    return sorted(out, key=lambda h: h["id"])


def argo_rollback(automated: bool, revision: str, started: str, history: list[dict]) -> bool:
    """An operation Argo CD started to roll back: a user's (never auto-sync's) sync of a
    revision the history holds as an earlier deployment than the one it replaces. Decided
    from fields every version sets (history, initiatedBy, operation.sync.revision) — not from
    operation.sync.source, which every sync carries since 3.2. A re-sync of what runs is not
    one; a manual sync to an older commit that never ran is not either (the superseded guard
    still keeps it from being rolled back)."""
    if automated or not revision:
        return False
    prior = [h for h in history if not (started and h["startedAt"] == started)]
    return bool(prior) and prior[-1]["revision"] != revision and any(h["revision"] == revision for h in prior)


def _resources(f: Fields) -> tuple[str, list[dict]]:
    """(where resource health is: "inline" | "appTree", the Degraded resources)."""
    where = f.text("resourceHealthSource", max_len=32) or "inline"
    degraded = []
    for i, r in enumerate(f.items("resources", max_items=1000)):
        rf = Fields(r, f"resources[{i}].")
        health = Fields(rf.mapping("health", max_items=8), f"resources[{i}].health.")
        if health.text("status", max_len=32) != "Degraded":
            continue
        if len(degraded) < 16:
            degraded.append({"group": rf.text("group", max_len=253), "kind": rf.text("kind", max_len=63),
                             "name": rf.text("name", max_len=253), "namespace": rf.text("namespace", max_len=63),
                             "message": health.free_text("message", 500)})
    return ("appTree" if where == "appTree" else "inline"), degraded


def _comparison_error(f: Fields) -> tuple[str, str]:
    """(since, message) of the ComparisonError condition, ("", "") without one."""
    for i, c in enumerate(f.items("conditions", max_items=64)):
        cf = Fields(c, f"conditions[{i}].")
        if cf.text("type", max_len=64) == "ComparisonError":
            return _timestamp(cf, "lastTransitionTime"), cf.free_text("message", 8000)
    return "", ""


def render_error(message: str) -> str:
    """The one line fnops render wrote to stderr, out of Argo CD's wrapping; failing that,
    the innermost gRPC description, so the reason is still short."""
    m = None
    for m in CMP_FAILED.finditer(message):
        pass
    if m:
        stderr = (m.group(3) or "").strip()
        line = stderr.splitlines()[0].strip() if stderr else ""
        return line or f"`{m.group(1)}` failed: {m.group(2)}"
    tail = message.rsplit("desc = ", 1)[-1].strip()
    return tail.splitlines()[0] if tail else ""


def from_argocd(body) -> dict:
    f = Fields(body)
    app = f.text("app", required=True, max_len=253)
    labels = Fields(f.mapping("labels", required=True), "labels.")
    raw_fn, raw_env = labels.obj.get(FUNCTION_LABEL), labels.obj.get(ENVIRONMENT_LABEL)
    if not raw_fn or not raw_env:
        raise UnknownApp(f"the application has no {FUNCTION_LABEL}/{ENVIRONMENT_LABEL} labels")
    kind = f.text("event", required=True, max_len=32)
    if kind not in ARGOCD_EVENTS:
        raise BadPayload(f"field 'event' must be one of {', '.join(ARGOCD_EVENTS)}")
    fn, env = labels.label(FUNCTION_LABEL), labels.label(ENVIRONMENT_LABEL)
    phase, health = _choice(f, "phase", PHASES), _choice(f, "health", HEALTH)
    started, finished, since = _timestamp(f, "startedAt"), _timestamp(f, "finishedAt"), _timestamp(f, "healthSince")
    operation, synced = f.revision("operationRevision"), f.revision("syncedRevision")
    automated = f.obj.get("automated")
    if automated is not None and not isinstance(automated, dict):
        raise BadPayload("field 'automated' must be an object or null")
    # An absent `automated` is a manual app; `enabled: false` (3.1+) switches it off too.
    auto_sync = automated is not None and automated.get("enabled", True) is not False
    initiated = Fields(f.mapping("initiatedBy", max_items=8), "initiatedBy.")
    by_controller = initiated.flag("automated")
    history = _history(f)
    resource_health, degraded = _resources(f)
    images = [i for i in f.items("images", max_items=64) if isinstance(i, str) and len(i) <= 512]
    if kind == "syncing":  # no syncResult yet: the operation names what it syncs
        revision = operation or synced
    elif kind == "render-failed":
        revision = _sha_or_empty(f, "syncRevision")
    else:
        revision = synced or operation
    message = f.free_text("message")
    if kind == "render-failed":
        cond_since, cond_message = _comparison_error(f)
        message = render_error(cond_message) or "manifest generation failed"
        happened, ident = cond_since, f"{cond_since}:{hashlib.sha256(cond_message.encode()).hexdigest()[:12]}"
    elif kind == "degraded":
        message = "; ".join(f"{r['kind']} {r['name']}: {r['message']}" if r["message"] else f"{r['kind']} {r['name']}"
                            for r in degraded) or "degraded"
        happened, ident = since or finished, f"{finished}:{since}"
    else:
        happened = ident = started if kind == "syncing" else finished
    event = {
        "source": "argocd", "kind": kind, "app": app, "function": fn, "environment": env,
        "revision": revision, "namespace": f.text("destinationNamespace", max_len=63),
        "appNamespace": f.text("appNamespace", max_len=63), "phase": phase,
        "health": health, "syncStatus": f.text("syncStatus", max_len=32), "message": message,
        "startedAt": started, "finishedAt": finished, "healthSince": since, "happenedAt": happened, "autoSync": auto_sync,
        "rollback": argo_rollback(by_controller, operation or synced, started, history),
        "initiatedBy": {"username": initiated.text("username", max_len=256), "automated": by_controller},
        "images": images, "resourceHealth": resource_health, "degradedResources": degraded,
    }
    # One event per operation (syncing: its start; deployed, sync-failed: its end), per health
    # transition after it (degraded) and per ComparisonError (render-failed): Argo CD sends an
    # event again until the bridge accepts it, and the catch-up may read it once more — the
    # key folds every repeat.
    event["key"] = f"argocd:{app}:{revision}:{kind}:{ident}"
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
        if labels.get("fnops_scaling"):  # scaling history (bridge/scaling.py): never an SLO alert
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
