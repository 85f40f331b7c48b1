"""Application objects as Argo CD persists them, step by step, per Argo CD version.

`App(version, ...)` starts from tests/argocd-samples/application-<version>.json (a released,
reconciled fnops Application; tests/argocd-samples/README.md says where each field comes
from) and moves it the way each version's controllers patch it. Every method returns the
whole object as the API server then holds it, which is what Argo CD's notification
controller evaluates. The version-dependent rules, each from the upstream function named:

- a new operation is `{operation, phase: Running, startedAt}` with no syncResult
  (controller/sync.go NewOperationState, all versions);
- `operation.sync.source` is set by every single-source sync from 3.2 on (appcontroller.go
  autoSync, server/application Sync: commit 5a8b427322, first in v3.2.0), and only by a
  rollback before that (server/application Rollback, all versions);
- the deploy history gets its entry before the operation turns Succeeded, with
  `deployStartedAt` = the operation's startedAt (controller/state.go persistRevisionHistory);
- finishing an operation sets finishedAt and leaves health as it was; the refresh the
  controller requests afterwards sets reconciledAt and recomputes health, whose
  lastTransitionTime moves only when its status changes (controller/health.go in 2.14/3.0,
  appcontroller.go persistAppStatus from 3.2);
- per-resource health is inline in status.resources on 2.14, and kept out of the
  Application from 3.0 (`resourceHealthSource: appTree`) unless
  `controller.resource.health.persist` is "true" (upgrading/2.14-3.0.md);
- an auto-sync whose attempt fails stays Running with finishedAt, retryCount and a
  "Retrying attempt #n" message until its last retry (appcontroller.go
  processRequestedAppOperation), then Failed with "(retried n times)";
- a failed manifest generation sets sync status Unknown and a ComparisonError whose message
  wraps the CMP's stderr (controller/state.go CompareAppState; reposerver repository.go and
  cmpserver plugin.go CmdError); its lastTransitionTime stays while the message does
  (ApplicationStatus.SetConditions).
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import os

HERE = os.path.dirname(os.path.abspath(__file__))
SAMPLES = os.path.join(HERE, "argocd-samples")
VERSIONS = ("2.14", "3.0", "3.2")
SUBSCRIBED = ("fnops-on-deployed", "fnops-on-health-degraded", "fnops-on-render-failed", "fnops-on-sync-failed",
              "fnops-on-sync-running")


def ts(t: dt.datetime) -> str:
    """metav1.Time's wire form: RFC 3339 in UTC, whole seconds."""
    return t.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def sample(version: str) -> dict:
    with open(os.path.join(SAMPLES, f"application-{version}.json"), encoding="utf-8") as f:
        return json.load(f)


def cmp_error(version: str, stderr: str, app: str) -> str:
    """The ComparisonError message of a failed `fnops render .` (exit 2), as each version words it."""
    cmd = f"`fnops render .` failed exit status 2: {stderr}"
    inner = f"error generating manifests in cmp: rpc error: code = Unknown desc = error generating manifests: {cmd}"
    if version in ("2.14", "3.0"):
        inner = f"plugin sidecar failed. {inner}"
    else:
        inner = f"CMP processing failed for application \"{app}\": {inner}"
    return f"Failed to load target state: failed to generate manifest for source 1 of 1: rpc error: code = Unknown desc = {inner}"


class App:
    """One fnops Application of a function in an environment, as `version` persists it.

    `persist_health`: controller.resource.health.persist (2.14's default is true, 3.x's false;
    fnops' repo-server component sets it true). `auto_sync`: False is an environment the
    ApplicationSet's templatePatch leaves on manual sync."""

    def __init__(self, version: str, function: str = "checkout", env: str = "dev", *, revision: str,
                 image: str, at: dt.datetime, persist_health: bool | None = None, auto_sync: bool = True,
                 namespace: str | None = None):
        if version not in VERSIONS:
            raise ValueError(f"no sample for Argo CD {version}")
        self.version, self.function, self.env = version, function, env
        self.persist_health = version == "2.14" if persist_health is None else persist_health
        self.obj = sample(version)
        self.name = f"{function}-{env}"
        ns = namespace or f"functions-{env}"
        md = self.obj["metadata"]
        md["name"], md["labels"] = self.name, {"fnops.dev/environment": env, "fnops.dev/function": function}
        spec = self.obj["spec"]
        spec["destination"]["namespace"] = ns
        spec["destination"]["server"] = f"https://{env}.k8s.example.com"
        self.source = copy.deepcopy(spec["source"])
        self.source["path"] = f"functions/{function}"
        self.source["plugin"]["env"][0]["value"] = env
        spec["source"] = copy.deepcopy(self.source)
        if not auto_sync:
            spec["syncPolicy"].pop("automated")
        self.auto_sync = auto_sync
        st = self.obj["status"]
        st["sync"]["comparedTo"] = {"destination": copy.deepcopy(spec["destination"]), "source": copy.deepcopy(self.source)}
        for h in st["history"]:
            h["source"] = copy.deepcopy(self.source)
        for r in st["resources"] + st["operationState"]["syncResult"]["resources"]:
            r["namespace"] = ns
            r["name"] = r["name"].replace("checkout", function)
        for r in st["operationState"]["syncResult"]["resources"]:
            r["message"] = r["message"].replace("checkout", function)
        st["operationState"]["syncResult"]["source"] = copy.deepcopy(self.source)
        if "source" in st["operationState"]["operation"]["sync"]:
            st["operationState"]["operation"]["sync"]["source"] = copy.deepcopy(self.source)
        self._set_resource_health()
        # The sample's release becomes this app's current release, deployed an hour before `at`.
        self._release(revision, image, at - dt.timedelta(hours=1))

    # -- what the controllers patch ------------------------------------------------------

    def _release(self, revision: str, image: str, at: dt.datetime) -> None:
        st = self.obj["status"]
        op = st["operationState"]
        op["operation"]["sync"]["revision"] = revision
        op["syncResult"]["revision"] = revision
        op["startedAt"], op["finishedAt"] = ts(at), ts(at + dt.timedelta(seconds=3))
        st["history"][-1].update(revision=revision, deployStartedAt=ts(at), deployedAt=ts(at + dt.timedelta(seconds=2)))
        st["history"][0].update(deployStartedAt=ts(at - dt.timedelta(days=1)),
                                deployedAt=ts(at - dt.timedelta(days=1, seconds=-2)))
        st["sync"].update(revision=revision, status="Synced")
        st["health"] = {"lastTransitionTime": ts(at + dt.timedelta(seconds=30)), "status": "Healthy"}
        st["reconciledAt"] = ts(at + dt.timedelta(seconds=31))
        st["summary"]["images"] = [image]

    def _set_resource_health(self, status: str = "Healthy", message: str = "", kind: str = "Service") -> None:
        st = self.obj["status"]
        for r in st["resources"]:
            r.pop("health", None)
            if self.persist_health and r["kind"] in ("Service", "Deployment", "KafkaSource", "ScaledObject"):
                if r["kind"] == kind:
                    r["health"] = {"status": status, **({"message": message} if message else {})}
                else:
                    r["health"] = {"status": "Healthy"}
        if self.persist_health:
            st.pop("resourceHealthSource", None)
        else:
            st["resourceHealthSource"] = "appTree"

    def add_resource(self, group: str, kind: str, name: str, version: str = "v1") -> "App":
        """Another managed object (a KafkaSource, a ScaledObject …) next to the workload."""
        r = {"group": group, "kind": kind, "name": name, "namespace": self.obj["spec"]["destination"]["namespace"],
             "status": "Synced", "version": version}
        self.obj["status"]["resources"].append(r)
        self._set_resource_health()
        return self

    def state(self) -> dict:
        return copy.deepcopy(self.obj)

    def sync_started(self, revision: str, at: dt.datetime, *, user: str | None = None) -> dict:
        """An operation begins: auto-sync (user None) or a user's sync of `revision`."""
        st = self.obj["status"]
        st["sync"].update(revision=revision, status="OutOfSync")
        sync = {"prune": True, "revision": revision, "syncOptions": ["CreateNamespace=true"]}
        if self.version not in ("2.14", "3.0"):
            sync["source"] = copy.deepcopy(self.source)
        retry = copy.deepcopy(self.obj["spec"]["syncPolicy"].get("retry") or {"limit": 5})
        operation = {"initiatedBy": {"username": user} if user else {"automated": True}, "retry": retry, "sync": sync}
        if user and "retry" not in self.obj["spec"]["syncPolicy"]:
            operation.pop("retry")
        st["operationState"] = {"operation": operation, "phase": "Running", "startedAt": ts(at)}
        return self.state()

    def rollback_started(self, history_id: int, at: dt.datetime, user: str = "admin@example.com") -> dict:
        """Argo CD's own rollback (refused while auto-sync is on): a sync of a history entry."""
        if self.auto_sync:
            raise AssertionError("Argo CD refuses a rollback while auto-sync is enabled")
        entry = next(h for h in self.obj["status"]["history"] if h["id"] == history_id)
        sync = {"prune": False, "revision": entry["revision"], "source": copy.deepcopy(entry["source"]),
                "syncOptions": ["CreateNamespace=true"], "syncStrategy": {"apply": {}}}
        self.obj["status"]["operationState"] = {"operation": {"initiatedBy": {"username": user}, "sync": sync},
                                                "phase": "Running", "startedAt": ts(at)}
        return self.state()

    def _op(self) -> dict:
        return self.obj["status"]["operationState"]

    def sync_applied(self, at: dt.datetime, image: str) -> dict:
        """The sync applied everything: history first, then the operation Succeeded; health
        is still the previous one (the refresh has not run)."""
        st, op = self.obj["status"], self._op()
        revision = op["operation"]["sync"]["revision"]
        st["history"].append({"deployStartedAt": op["startedAt"], "deployedAt": ts(at),
                              "id": st["history"][-1]["id"] + 1, "initiatedBy": op["operation"]["initiatedBy"],
                              "revision": revision, "source": copy.deepcopy(self.source)})
        st["history"] = st["history"][-10:]
        op.update(phase="Succeeded", message="successfully synced (all tasks run)", finishedAt=ts(at))
        op["syncResult"] = {"resources": [
            {"group": r.get("group", ""), "hookPhase": "Running", "kind": r["kind"],
             "message": f"{r['kind'].lower()}/{r['name']} configured", "name": r["name"], "namespace": r["namespace"],
             "status": "Synced", "syncPhase": "Sync", "version": r["version"]} for r in st["resources"]],
            "revision": revision, "source": copy.deepcopy(self.source)}
        st["summary"]["images"] = [image]
        return self.state()

    def refreshed(self, at: dt.datetime, health: str, *, message: str = "", kind: str = "Service") -> dict:
        """The controller's refresh: sync status and health recomputed, reconciledAt set."""
        st = self.obj["status"]
        op = st.get("operationState") or {}
        if op.get("phase") == "Succeeded":
            st["sync"].update(status="Synced", revision=op["syncResult"]["revision"])
        if st["health"]["status"] != health:
            st["health"] = {"lastTransitionTime": ts(at), "status": health}
        self._set_resource_health(health, message, kind)
        st.pop("conditions", None)
        st["reconciledAt"] = ts(at)
        return self.state()

    def attempt_failed(self, at: dt.datetime, message: str, *, retries_left: bool) -> dict:
        """An attempt of the running operation failed: Running again with finishedAt while
        retries are left, else Failed for good."""
        op = self._op()
        op["syncResult"] = {"resources": [], "revision": op["operation"]["sync"]["revision"],
                            "source": copy.deepcopy(self.source)}
        count = op.get("retryCount", 0)
        if retries_left:
            op.update(phase="Running", finishedAt=ts(at), retryCount=count + 1,
                      message=f"{message}. Retrying attempt #{count + 1} at {at.strftime('%-I:%M%p')}.")
        else:
            op.update(phase="Failed", finishedAt=ts(at),
                      message=f"{message} (retried {count} times)." if count else message)
        return self.state()

    def retry_started(self) -> dict:
        op = self._op()
        op.update(message=f"Retrying operation. Attempt #{op['retryCount']}")
        op.pop("finishedAt", None)
        op.pop("syncResult", None)
        return self.state()

    def render_failed(self, at: dt.datetime, stderr: str, *, tip: str | None = None) -> dict:
        """A refresh whose manifest generation failed (no operation starts)."""
        st = self.obj["status"]
        message = cmp_error(self.version, stderr, self.name)
        old = next((c for c in st.get("conditions", []) if c["type"] == "ComparisonError"), None)
        since = old["lastTransitionTime"] if old and old["message"] == message else ts(at)
        st["conditions"] = [{"lastTransitionTime": since, "message": message, "type": "ComparisonError"}]
        # The comparison names the target revision it was asked for (the branch, on a refresh).
        st["sync"].update(status="Unknown", revision=tip or self.source["targetRevision"])
        st["reconciledAt"] = ts(at)
        return self.state()
