"""Scaling history: KEDA's CloudEvents and fnops' scaling alerts -> transitions, coalesced.

Two sources exist on real clusters, and this module reads both the way they really send:

- **KEDA ≥ 2.15's CloudEventSource** (`POST /v1/keda`). Its http event sink
  (pkg/eventemitter/cloudevent_http_handler.go, KEDA v2.21.0) sends with the CloudEvents Go
  SDK's default client: *binary* mode (`ce-*` headers, `content-type: application/json`), a
  UUID `id` and `time` set at each send (a retry is a new id), `source`
  `/<clusterName>/<keda namespace>/keda`, `subject`
  `/<clusterName>/<namespace>/<kind, lower case>/<name>` and data `{"reason", "message"}`.
  Structured mode (`application/cloudevents+json`) is read as well. The ScaledObject types it
  emits are `keda.scaledobject.{ready,failed,removed,paused,unpaused}.v1`
  (apis/eventing/v1alpha1/cloudevent_types.go); scale-to-zero, fallback and scaler errors
  are Kubernetes Events (pkg/scaling), never CloudEvents (its metrics show scaler activity and
  fetch errors, not replicas), and fnops renders no `fallback`. Other types (ScaledJobs,
  TriggerAuthentications) are answered 200 and dropped.
- **Knative's autoscaler (KPA) sends nothing**: render/scaling.py writes alert rules on its
  replica gauge, and Alertmanager posts them to `/v1/alertmanager` like the SLO alerts. They
  carry `fnops_scaling` (`zero`, `max`) and are split off here, so they never become
  `alert-firing` events and never reach the rollback sink.

A transition is recorded only when the (function, environment, dimension) state changes —
KEDA repeats `failed` at every reconcile and Alertmanager repeats a firing alert — and at most
`scaling.maxPerHour` per function and environment per hour of the event's own time; past
that they are counted, and the count is written as one `scaling-suppressed` line with the
function's next transition after that hour, or once that hour is over and a minute has
passed without another (`Coalescer.flush`, which this process runs for the counts it made).
The counters live in the outbox's key-value table under one lock per process: with several
replicas the bound may be passed by a transition or two (the outbox still folds exact
repeats by key).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import threading
import time

from ..lazyre import LazyRe
from .door import BadPayload, Fields, parse

# KEDA's CloudEvent types for ScaledObjects -> the transition they record (one state: "keda").
KEDA_TYPES = {
    "keda.scaledobject.ready.v1": "scaler-ready",
    "keda.scaledobject.failed.v1": "scaler-failed",
    "keda.scaledobject.paused.v1": "scaling-paused",
    "keda.scaledobject.unpaused.v1": "scaling-resumed",
    "keda.scaledobject.removed.v1": "scaling-removed",
}
# The scaling alerts render/scaling.py writes: name -> (dimension, kind when firing, kind when resolved).
ALERTS = {
    "FnopsScaledToZero": ("zero", "scaled-to-zero", "scaled-from-zero"),
    "FnopsAtMaxScale": ("max", "at-max-scale", "below-max-scale"),
}
SCALING_LABEL = "fnops_scaling"
# What reaches the release's Slack thread (and the recovery from it); the rest goes to the
# audit log only.
MATTERS = ("scaler-failed", "at-max-scale")
RECOVERY = {"scaler-ready": "scaler-failed", "below-max-scale": "at-max-scale"}
DEFAULT_MAX_PER_HOUR = 12
QUIET = 60.0  # seconds without a suppressed transition before an hour's count is written by itself
STRUCTURED = "application/cloudevents+json"
TIMESTAMP = LazyRe(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)")
# KEDA's subject: /<cluster>/<namespace>/<kind, lower case; may be empty>/<name>
SUBJECT = LazyRe(r"/([^/]*)/([a-z0-9-]{1,63})/([a-z]*)/([a-z0-9-]{1,63})")


def _epoch(ts: str) -> float | None:
    """RFC 3339 (Go writes nanoseconds; Python reads microseconds) -> seconds, None if not one."""
    m = TIMESTAMP.fullmatch(ts or "")
    if not m:
        return None
    frac = (m.group(2) or "0")[:6]
    try:
        return dt.datetime.fromisoformat(f"{m.group(1)}.{frac:0<6}{m.group(3).replace('Z', '+00:00')}").timestamp()
    except ValueError:
        return None


def _attributes(headers: dict, raw: bytes) -> tuple[dict, dict]:
    """(CloudEvent attributes, data) from either content mode; BadPayload names what is wrong."""
    ctype = headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype == STRUCTURED:
        f = Fields(parse(raw))
        attrs = {k: f.text(k, max_len=512) for k in ("specversion", "id", "source", "type", "subject", "time")}
        data = f.obj.get("data")
        if data is None:
            data = {}
    elif ctype.startswith("application/cloudevents"):
        raise BadPayload(f"content type '{ctype[:64]}' is not accepted: a single event, binary or structured mode")
    else:
        attrs = {k: headers.get(f"ce-{k}", "") for k in ("specversion", "id", "source", "type", "subject", "time")}
        for k, v in attrs.items():
            if len(v) > 512:
                raise BadPayload(f"header 'ce-{k}' is longer than 512 characters")
        if not attrs["specversion"]:
            raise BadPayload("not a CloudEvent: no ce-specversion header and not application/cloudevents+json")
        if ctype != "application/json":
            raise BadPayload("field 'datacontenttype' must be application/json (KEDA sends its data as JSON)")
        data = parse(raw) if raw.strip() else {}
    if attrs["specversion"] != "1.0":
        raise BadPayload("field 'specversion' must be \"1.0\"")
    for k in ("id", "source", "type"):
        if not attrs[k]:
            raise BadPayload(f"missing required CloudEvent attribute '{k}'")
    if attrs["time"] and _epoch(attrs["time"]) is None:
        raise BadPayload("field 'time' must be an RFC 3339 time")
    return attrs, data


def from_keda(headers: dict, raw: bytes, origins, ignored: list) -> list[dict]:
    """One transition event for a ScaledObject event from a function's namespace; [] (with
    the reason in `ignored`) for any other object, type or namespace."""
    attrs, data = _attributes(headers, raw)
    d = Fields(data, "data.")
    reason, message = d.text("reason", max_len=128), d.free_text("message", 500)
    kind = KEDA_TYPES.get(attrs["type"])
    m = SUBJECT.fullmatch(attrs["subject"])
    if not m:
        raise BadPayload("field 'subject' must be /<cluster>/<namespace>/<kind>/<name>, as KEDA writes it")
    _, namespace, object_kind, name = m.groups()
    if kind is None or object_kind not in ("scaledobject", ""):  # KEDA may leave the kind empty (no TypeMeta)
        ignored.append(f"KEDA event {attrs['type'][:80]} is not about a ScaledObject's scaling")
        return []
    env = environment_of(origins, name, namespace)
    if env is None:
        ignored.append(f"KEDA event for ScaledObject {name} in namespace {namespace}, which is no environment's "
                       "namespace (argocd.namespace)")
        return []
    at = _epoch(attrs["time"])
    detail = f"{reason}: {message}" if reason and message else reason or message
    return [transition(name, env, "keda", kind, at, detail, namespace=namespace,
                       ident=hashlib.sha256(f"{attrs['source']}|{attrs['id']}".encode()).hexdigest()[:16])]


def environment_of(origins, fn: str, namespace: str) -> str | None:
    """The environment whose namespace (argocd.namespace) `namespace` is for `fn`."""
    if isinstance(origins.namespace, dict):
        envs = [e for e, ns in origins.namespace.items() if ns == namespace]
        return envs[0] if len(envs) == 1 else None
    pattern = re.escape(origins.namespace).replace(r"\{function\}", "(?P<f>[a-z0-9-]+)").replace(
        r"\{environment\}", "(?P<e>[a-z0-9-]+)")
    m = re.fullmatch(pattern, namespace)
    if not m or "e" not in m.groupdict() or (m.groupdict().get("f") not in (None, fn)):
        return None
    env = m.group("e")
    return env if origins.namespace_of(fn, env) == namespace else None


def is_scaling_alert(labels: dict) -> bool:
    return bool(labels.get(SCALING_LABEL))


def from_alertmanager(body, admit, ignored: list) -> list[dict]:
    """The scaling alerts of a webhook body (events.from_alertmanager leaves them out): one
    transition per alert, firing or resolved."""
    f = Fields(body)
    out = []
    for i, a in enumerate(f.items("alerts", required=True)):
        af = Fields(a, f"alerts[{i}].")
        labels = af.string_map("labels", required=True)
        if not is_scaling_alert(labels):
            continue
        name = labels.get("alertname", "")
        if name not in ALERTS or not labels.get("fnops_function") or not labels.get("fnops_environment"):
            ignored.append(f"scaling alert {name[:60]!r} is not one fnops renders")
            continue
        lf = Fields(labels, f"alerts[{i}].labels.")
        fn, env = lf.label("fnops_function"), lf.label("fnops_environment")
        why = admit(fn, env, labels)
        if why:
            ignored.append(why)
            continue
        status = af.text("status", required=True, max_len=16)
        if status not in ("firing", "resolved"):
            raise BadPayload(f"field 'alerts[{i}].status' must be firing or resolved")
        started, ended = af.text("startsAt", max_len=64), af.text("endsAt", max_len=64)
        dimension, on, off = ALERTS[name]
        kind = on if status == "firing" else off
        at = _epoch(started if status == "firing" else ended)
        summary = af.string_map("annotations").get("summary", "")[:500]
        ident = hashlib.sha256(f"{af.text('fingerprint', max_len=64)}|{started}|{status}".encode()).hexdigest()[:16]
        out.append(transition(fn, env, dimension, kind, at, summary, namespace=labels.get("namespace", "")[:63],
                              ident=ident))
    return out


def transition(fn: str, env: str, dimension: str, kind: str, at: float | None, message: str, *, namespace: str,
               ident: str) -> dict:
    return {"source": "scaling", "kind": kind, "function": fn, "environment": env, "revision": "",
            "dimension": dimension, "namespace": namespace, "message": message,
            "happenedAt": at, "key": f"scaling:{fn}:{env}:{kind}:{ident}",
            "onlySinks": ("audit", "slack") if kind in MATTERS else ("audit",)}


class Coalescer:
    """Which transitions to record: state changes only, at most `max_per_hour` per function
    and environment per hour, and the count of the rest once that hour is over."""

    def __init__(self, store, max_per_hour: int = DEFAULT_MAX_PER_HOUR, clock=time.time):
        self.store, self.max, self.clock = store, max_per_hour, clock
        self.lock = threading.Lock()
        self.open: set = set()  # (function, environment) with a count not yet written (this process)

    def accept(self, events: list[dict], accept) -> tuple[list, dict]:
        """Pass the events worth recording (and any others in `events`) to `accept` (the
        outbox's), and only once it has taken them remember the new states and counts — so
        an outbox that fails (503, the sender retries) forgets nothing. -> (what `accept`
        returned, or [] when nothing was worth it; {"unchanged": n, "suppressed": n})."""
        told = {"unchanged": 0, "suppressed": 0}
        with self.lock:
            pending: dict = {}
            out = []
            for ev in events:
                out += self._one(ev, told, pending) if ev.get("source") == "scaling" else [ev]
            results = accept(out) if out else []
            for (ns, key), value in pending.items():
                self.store.put(ns, key, value)
                if ns == "scaling-hour" and value["suppressed"]:
                    self.open.add(key)
        return results, told

    def flush(self, accept, quiet: float = QUIET) -> int:
        """Write the count of an hour that is over and has been quiet for `quiet` seconds,
        so a function that flapped and then went still is not left without it (the door runs
        this every minute). -> how many count lines were accepted."""
        now, n = self.clock(), 0
        with self.lock:
            for key in sorted(self.open):
                count = self.store.get("scaling-hour", key)
                if not count or not count["suppressed"]:
                    self.open.discard(key)
                    continue
                if int(now // 3600) <= count["hour"] or now - count.get("last", 0) < quiet:
                    continue
                fn, env = key.split("|")
                accept([self._summary(fn, env, count)])
                self.store.put("scaling-hour", key, dict(count, reported=count.get("reported", 0) + count["suppressed"],
                                                          suppressed=0))
                self.open.discard(key)
                n += 1
        return n

    def _get(self, pending: dict, ns: str, key: str):
        return pending[(ns, key)] if (ns, key) in pending else self.store.get(ns, key)

    def _one(self, ev: dict, told: dict, pending: dict) -> list[dict]:
        now = self.clock()
        at = ev.get("happenedAt")
        # The event's own hour, so a late delivery counts where it happened; a time far off
        # (a skewed clock) counts now.
        if at is None or abs(at - now) > 86400:
            at = now
        ev["happenedAt"] = at
        fn, env = ev["function"], ev["environment"]
        state_key = f"{fn}|{env}|{ev['dimension']}"
        before = self._get(pending, "scaling-state", state_key)
        if before == ev["kind"]:
            told["unchanged"] += 1
            return []
        if before is not None and RECOVERY.get(ev["kind"]) == before:  # the thread hears that it is over
            ev["onlySinks"] = ("audit", "slack")
        hour = int(at // 3600)
        count = dict(self._get(pending, "scaling-hour", f"{fn}|{env}")
                     or {"hour": hour, "recorded": 0, "suppressed": 0})
        out = []
        if hour > count["hour"]:
            if count["suppressed"]:
                out.append(self._summary(fn, env, count))
            count = {"hour": hour, "recorded": 0, "suppressed": 0}
        pending[("scaling-state", state_key)] = ev["kind"]
        if count["recorded"] >= self.max:
            count["suppressed"] += 1
            count["last"] = now
            told["suppressed"] += 1
        else:
            count["recorded"] += 1
            out.append(ev)
        pending[("scaling-hour", f"{fn}|{env}")] = count
        return out

    def _summary(self, fn: str, env: str, count: dict) -> dict:
        start = time.strftime("%Y-%m-%dT%H:00Z", time.gmtime(count["hour"] * 3600))
        n = count["suppressed"]
        msg = (f"{n} more scaling transition{'s' if n != 1 else ''} in the hour from {start} not recorded "
               f"(scaling.maxPerHour: {self.max})")
        # one line per count written: a late transition of an hour already counted gets its own
        ev = transition(fn, env, "summary", "scaling-suppressed", count["hour"] * 3600 + 3599, msg, namespace="",
                        ident=f"{count['hour']}-{count.get('reported', 0) + n}")
        ev["suppressed"] = n
        return ev
