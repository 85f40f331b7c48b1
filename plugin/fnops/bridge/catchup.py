"""Catch-up: what Argo CD would have told the bridge, read from the Application objects.

Argo CD's notification controller sends an fnops event again until the bridge accepts it,
but only while the state that fires it lasts (notifications/argocd-notifications-cm.yaml).
So on start — before the door opens — and every `argocd.catchUp.interval` after, the bridge
reads every fnops Application and accepts the events its current state implies, exactly as
the triggers and templates would send them; the event keys fold what was already accepted.
That covers a bridge that was down, a database outage and a send the controller gave up on;
on top of the triggers it adds the `syncing` of the operation that produced the current
state, which the trigger sends only while the operation runs.

`ApplicationSource` is where the objects come from: `KubernetesApplications` lists them from
the Kubernetes API of the cluster Argo CD runs in (what `kubectl get applications` reads; a
ServiceAccount that may `list` applications.argoproj.io in Argo CD's namespace), nothing
else. Events older than `argocd.catchUp.maxAge` are left alone: the outbox forgets
delivered events after `retention.doneAfter`, and an older event would be news again.
"""

from __future__ import annotations

import json
import logging
import os
import ssl
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

from ..errors import TemporaryError
from ..escape import shown
from . import events as ev

log = logging.getLogger("fnops.bridge")

GRACE = 120  # seconds: the triggers' `2 * time.Minute` for health that did not change after a sync
SELECTOR = f"{ev.FUNCTION_LABEL},{ev.ENVIRONMENT_LABEL}"
IN_CLUSTER = "/var/run/secrets/kubernetes.io/serviceaccount"


class ApplicationSource:
    """Argo CD's Application objects, as stored (metadata, spec, status)."""

    name = "applications"

    def applications(self) -> list[dict]:  # pragma: no cover - interface
        raise NotImplementedError


class KubernetesApplications(ApplicationSource):
    """GET /apis/argoproj.io/v1alpha1/namespaces/<ns>/applications, selected by fnops'
    labels, a page at a time. The token is read from its file for every pass (projected
    ServiceAccount tokens rotate); it is never logged."""

    name = "kubernetes"

    def __init__(self, url: str, namespace: str, token_file: str | None = None, token: str | None = None,
                 ca_file: str | None = None, timeout: float = 10.0, page: int = 100):
        self.url, self.namespace, self.timeout, self.page = url.rstrip("/"), namespace, timeout, page
        self.token_file, self.token = token_file, token
        self.context = None
        if self.url.startswith("https://"):
            self.context = ssl.create_default_context(cafile=ca_file) if ca_file else ssl.create_default_context()

    def _token(self) -> str | None:
        if self.token:
            return self.token
        if self.token_file:
            try:
                with open(self.token_file, encoding="utf-8") as f:
                    return f.read().strip()
            except OSError as e:
                raise TemporaryError(f"catch-up: cannot read the token file {self.token_file}: {e.strerror}") from None
        return None

    def _get(self, query: dict) -> dict:
        path = (f"/apis/argoproj.io/v1alpha1/namespaces/{urllib.parse.quote(self.namespace, safe='')}/applications?"
                + urllib.parse.urlencode(query))
        headers = {"Accept": "application/json"}
        token = self._token()
        if token:
            headers["Authorization"] = f"Bearer {token}"
        req = urllib.request.Request(self.url + path, headers=headers, method="GET")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout, context=self.context) as r:
                data = r.read(64 << 20)
        except urllib.error.HTTPError as e:
            e.close()  # it holds the connection
            raise TemporaryError(f"catch-up: listing Applications in {self.namespace}: HTTP {e.code}") from None
        except (OSError, ValueError) as e:
            raise TemporaryError(f"catch-up: listing Applications in {self.namespace}: {getattr(e, 'reason', e)}") from None
        try:
            doc = json.loads(data)
        except ValueError:
            raise TemporaryError("catch-up: the Kubernetes API answered something that is not JSON") from None
        if not isinstance(doc, dict) or not isinstance(doc.get("items"), list):
            raise TemporaryError("catch-up: the Kubernetes API answered no ApplicationList")
        return doc

    def applications(self) -> list[dict]:
        out, query = [], {"labelSelector": SELECTOR, "limit": str(self.page)}
        for _ in range(10_000):
            doc = self._get(query)
            out += [a for a in doc["items"] if isinstance(a, dict)]
            cont = (doc.get("metadata") or {}).get("continue")
            if not cont:
                return out
            query = {**query, "continue": cont}
        raise TemporaryError("catch-up: the Application list does not end")


def in_cluster_url() -> str:
    """The API server a pod reaches (its ServiceAccount's token and CA are under IN_CLUSTER)."""
    host, port = os.environ.get("KUBERNETES_SERVICE_HOST"), os.environ.get("KUBERNETES_SERVICE_PORT", "443")
    if not host:
        return "https://kubernetes.default.svc"
    return f"https://[{host}]:{port}" if ":" in host else f"https://{host}:{port}"


# --- the triggers and templates, for one stored Application ------------------------------

def _dig(obj, *path, default=None):
    """sprig's dig: the value at path, the default where a key is absent."""
    for i, key in enumerate(path):
        if not isinstance(obj, dict):
            raise ValueError(f"dig: {'.'.join(path[:i])} is not a map")
        if key not in obj:
            return default
        obj = obj[key]
    return obj


def body_of(app: dict, event: str) -> dict:
    """The body the shipped template for `event` renders for this Application."""
    d = lambda *p, default="": _dig(app, *p, default=default)  # noqa: E731
    return {
        "event": event, "app": (app.get("metadata") or {}).get("name"),
        "appNamespace": (app.get("metadata") or {}).get("namespace"),
        "labels": d("metadata", "labels", default={}), "destinationNamespace": d("spec", "destination", "namespace"),
        "automated": d("spec", "syncPolicy", "automated", default=None),
        "syncStatus": d("status", "sync", "status"), "syncRevision": d("status", "sync", "revision"),
        "health": d("status", "health", "status"), "healthSince": d("status", "health", "lastTransitionTime"),
        "resourceHealthSource": d("status", "resourceHealthSource"), "resources": d("status", "resources", default=[]),
        "conditions": d("status", "conditions", default=[]), "phase": d("status", "operationState", "phase"),
        "message": d("status", "operationState", "message"), "startedAt": d("status", "operationState", "startedAt"),
        "finishedAt": d("status", "operationState", "finishedAt"),
        "operationRevision": d("status", "operationState", "operation", "sync", "revision"),
        "syncedRevision": d("status", "operationState", "syncResult", "revision"),
        "initiatedBy": d("status", "operationState", "operation", "initiatedBy", default={}),
        "history": d("status", "history", default=[]), "images": d("status", "summary", "images", default=[]),
    }


def _parse(ts) -> float | None:
    """time.Parse(time.RFC3339, …) as the `time` helper does; None where it would fail."""
    return ev.epoch(ts) if isinstance(ts, str) and ev.TIMESTAMP.fullmatch(ts) else None


def unreconciled(app: dict) -> bool:
    """Argo CD's notification controller skips an app whose finished operation the app
    controller has not refreshed after (finishedAt after reconciledAt and observedAt)."""
    op = _dig(app, "status", "operationState", default=None)
    if not isinstance(op, dict) or op.get("phase") not in ("Failed", "Error", "Succeeded"):
        return False
    finished = _parse(op.get("finishedAt"))
    if finished is None:
        return True
    seen = [_parse(_dig(app, "status", k)) or 0.0 for k in ("reconciledAt", "observedAt")]
    return all(finished > s for s in seen)


def triggered(app: dict, now: float) -> list[str]:
    """The events whose trigger condition holds for this state, as the `when`s in
    notifications/argocd-notifications-cm.yaml evaluate."""
    st = app.get("status") or {}
    op, health = st.get("operationState"), st.get("health") or {}
    phase = op.get("phase") if isinstance(op, dict) else None
    out = []
    if phase == "Running":
        out.append("syncing")
    if phase == "Succeeded" and health.get("status") in ("Healthy", "Degraded"):
        finished, since = _parse(op.get("finishedAt")), health.get("lastTransitionTime") or ""
        if finished is not None:
            after = bool(since) and _parse(since) is not None and _parse(since) >= finished
            if after or finished + GRACE < now:
                out.append("deployed" if health["status"] == "Healthy" else "degraded")
    if phase in ("Error", "Failed"):
        out.append("sync-failed")
    if (st.get("sync") or {}).get("status") == "Unknown" and any(
            isinstance(c, dict) and c.get("type") == "ComparisonError" for c in st.get("conditions") or []):
        out.append("render-failed")
    return out


def events_for(app: dict, now: float) -> list[dict]:
    """The bodies Argo CD would send for this state, plus the `syncing` of the operation
    that produced it (sent by the trigger only while it ran), in the order they happened."""
    if unreconciled(app):
        return []
    fired = triggered(app, now)
    op = _dig(app, "status", "operationState", default=None)
    if isinstance(op, dict) and op.get("startedAt") and "syncing" not in fired:
        fired.insert(0, "syncing")
    return [body_of(app, e) for e in fired]


class CatchUp:
    """Reads the source, accepts what is missing; one pass at a time."""

    def __init__(self, source: ApplicationSource, accept, origins, interval: float, max_age: float, clock=time.time):
        self.source, self.accept, self.origins = source, accept, origins
        self.interval, self.max_age, self.clock = interval, max_age, clock
        self.stopping = threading.Event()
        self.thread: threading.Thread | None = None

    def run_once(self) -> int:
        """One pass; the number of events it handed to the outbox (repeats included)."""
        now = self.clock()
        found = []
        for app in self.source.applications():
            for body in events_for(app, now):
                try:
                    event = ev.from_argocd(body)
                except (ev.BadPayload, ev.UnknownApp) as e:
                    log.warning("catch-up: application %s: %s", shown(str(body.get("app"))), e)
                    continue
                why = self.origins.argocd(event)
                if why:
                    log.warning("catch-up: ignored: %s", why)
                    continue
                at = ev.epoch(event["happenedAt"])
                if at is not None and now - at > self.max_age:
                    continue
                found.append(event)
        if found:
            self.accept(found)
        return len(found)

    def pass_logged(self) -> bool:
        try:
            n = self.run_once()
        except TemporaryError as e:
            log.warning("%s (next try in %ds)", e, int(self.interval))
            return False
        except Exception:  # a pass must never take the bridge down; the next one tries again
            log.exception("catch-up: pass failed (next try in %ds)", int(self.interval))
            return False
        log.info("catch-up: %d Argo CD event(s) handed to the outbox (repeats fold)", n)
        return True

    def start(self) -> None:
        def loop():
            while not self.stopping.wait(self.interval):
                self.pass_logged()

        self.thread = threading.Thread(target=loop, name="fnops-catchup", daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.stopping.set()
