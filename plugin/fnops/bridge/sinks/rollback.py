"""Guarded rollback in Git. A release that degrades or fails to sync within its bake time,
or draws an SLO alert within it, is replaced by `previous` with a rollback commit
(`rollback: auto`) or a pull request (`rollback: pr`); `off` only reports. The bake time
starts when the release went live — the end of its first sync the bridge saw — not when it
was committed, so a release that waits for a manual sync is judged from its sync. Guards —
never roll back a rollback, at most one rollback per release, nothing without a previous
release, nothing when a newer release already replaced it, a degradation only if it came
after the release's sync and is the function's own workload — are reported as events,
never silent. Where the environment does not sync automatically the rollback commit waits
for a sync, and the report says so. A canary in its bake (the pin's split not yet promoted)
is the canary sink's: it aborts it, with the same pin op, guard and reports."""

from __future__ import annotations

import time

from ...delivery import commits, pins
from ...errors import PermanentError, TemporaryError
from ..events import WORKLOADS, epoch as _epoch

REVISION = ("serving.knative.dev", "Revision")
from . import Sink


def _span(seconds: float) -> str:
    seconds = int(max(0, seconds))
    if seconds >= 86400:
        return f"{seconds // 86400}d{seconds % 86400 // 3600}h"
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60}m"
    return f"{seconds // 60}m{seconds % 60}s" if seconds >= 60 else f"{seconds}s"



def commit_pin(gitops, github, op, why: str, mode: str, what: str):
    """One pin op committed to the bridge's GitOps repository, or proposed as a pull request
    in mode "pr": (sha, changes, pr). A guard's refusal (pins.Refused) and permanent answers
    pass through; anything else (git transport trouble) is temporary, so the outbox retries."""
    kw = {}
    if mode == "pr":
        kw = {"mode": "pr", "api_url": github.base_url, "api_token": github.token, "github_repo": gitops.github_repo}
    try:
        return commits.commit_pins([op], repo=None, url=gitops.repo, branch=gitops.branch, token=gitops.token,
                                   why=why, **kw)
    except PermanentError:
        raise
    except Exception as e:
        raise TemporaryError(f"{what}: {e}") from None

class RollbackSink(Sink):
    name = "rollback"
    # deployed only records when the release went live (its bake time's start).
    kinds = ("deployed", "degraded", "sync-failed", "alert-firing")

    def __init__(self, gitops_cfg, rollback_cfg, github_cfg):
        self.gitops, self.bake, self.github = gitops_cfg, rollback_cfg.bake_seconds, github_cfg
        self.alert_names, self.alert_namespaces = rollback_cfg.alert_names, rollback_cfg.alert_namespaces

    def _followup(self, event, kind, release, **extra):
        return [{"source": "fnops", "kind": kind, "function": event["function"], "environment": event["environment"],
                 "revision": event.get("revision", ""), "app": event.get("app"),
                 "release": release, "cause": event["key"], "key": f"rollback:{event['key']}:{kind}", **extra}]

    def _not_an_slo_alert(self, event: dict) -> str | None:
        return not_an_slo_alert(event, self.alert_names, self.alert_namespaces)

    def _live(self, event: dict, release: dict, ctx) -> dict:
        """When the release went live (the earliest finished sync of it seen) and whether its
        environment syncs automatically (the latest Argo CD event says)."""
        key = f"{event['function']}|{event['environment']}|{release.get('image')}"
        live = ctx.store.get("release-live", key) or {}
        if event.get("source") == "argocd" and event.get("phase") == "Succeeded" and event.get("finishedAt"):
            seen = live.get("since")
            since = event["finishedAt"] if not seen or _epoch(event["finishedAt"]) < _epoch(seen) else seen
            new = {"since": since, "autoSync": event.get("autoSync", True), "app": event.get("app")}
            if new != live:
                ctx.store.put("release-live", key, new)
            live = new
        elif event.get("source") == "argocd" and live and live.get("autoSync") != event.get("autoSync"):
            live = dict(live, autoSync=event.get("autoSync", True))
            ctx.store.put("release-live", key, live)
        return live

    def deliver(self, event: dict, ctx):
        if event["kind"] == "deployed":
            release = ctx.release(event)
            if release and release.get("image"):
                self._live(event, release, ctx)
            return None
        # A redelivery (after a crash) repeats the recorded outcome instead of deciding again.
        done = ctx.store.get("rollback-outcome", event["key"])
        if done is not None:
            return done
        out = self._decide(event, ctx)
        ctx.store.put("rollback-outcome", event["key"], out or [])
        return out

    def _decide(self, event: dict, ctx):
        release = ctx.release(event)
        if not release or not release.get("image"):
            return None  # nothing pinned: nothing to roll back (the event itself is reported)
        if event["kind"] in ("degraded", "alert-firing") and (release.get("canary") or {}).get("state") == "baking":
            return None  # a canary in its bake is aborted by the canary sink, which reports it
        mode = release.get("rollbackMode", "off")
        if mode == "off":
            return None
        if mode == "pr" and not self.github:
            raise PermanentError("rollback: pr needs the github section (token) in the bridge config")
        skip = lambda reason: self._followup(event, "rollback-skipped", release, reason=reason)  # noqa: E731
        live = self._live(event, release, ctx)
        if event.get("rollback") or release.get("rollbackOf"):
            return skip("this release is itself a rollback; not rolling back a rollback")
        if not (release.get("previous") or {}).get("image"):
            return skip("no previous release recorded")
        why_not = self._outside(event, release, live)
        if why_not:
            return skip(why_not)
        current = ctx.release_at_tip(event)
        if current and current.get("image") != release.get("image"):
            return skip(f"superseded: {event['environment']} now pins {current.get('image')}")
        # At most one rollback per release, across restarts; the same event may retry.
        guard = f"{event['function']}|{event['environment']}|{release['image']}"
        if not ctx.store.claim("rollback-guard", guard, event["id"]) and ctx.store.get("rollback-guard", guard) != event["id"]:
            return skip("this release was already rolled back once")
        op = pins.PinOp(self.gitops.functions_dir, event["function"], event["environment"], "rollback")
        why = f"Automatic rollback by the fnops bridge: {event['kind']} ({event['key']})."
        try:
            sha, changes, pr = commit_pin(self.gitops, self.github, op, why, mode, "rollback")
        except pins.Refused as e:
            return skip(str(e))
        restored = changes[0].image if changes else None
        # A manually synced environment applies the commit only when someone syncs it.
        awaited = {"syncAwaited": True} if not live.get("autoSync", event.get("autoSync", True)) else {}
        if mode == "pr":
            return self._followup(event, "rollback-proposed", release, pullRequest=pr, commit=sha, restoredImage=restored,
                                  **awaited)
        return self._followup(event, "rolled-back", release, commit=sha, restoredImage=restored, **awaited)

    def _outside(self, event: dict, release: dict, live: dict) -> str | None:
        """Why this event does not make the release roll back (None: it does)."""
        kind, bake = event["kind"], self.bake
        went_live = _epoch(live.get("since"))
        if kind == "alert-firing":
            why_not = self._not_an_slo_alert(event)
            if why_not:
                return why_not
            # A release the bridge never saw synced is measured from its commit (auto-sync).
            since = went_live if went_live is not None else _epoch(release.get("releasedAt"))
            if since is None or time.time() - since > bake:
                return f"alert outside the bake time ({bake}s) of the release"
            return None
        if kind == "sync-failed":
            failed = _epoch(event.get("finishedAt")) or time.time()
            if went_live is not None and failed - went_live > bake:
                return (f"a sync of a release live since {live['since']} failed {_span(failed - went_live)} later, "
                        f"past the bake time ({bake}s): not caused by the release")
            return None
        # degraded: the health Argo CD evaluated after the sync, within the bake time, of the
        # object that runs the release's image.
        since, finished = _epoch(event.get("healthSince")), _epoch(event.get("finishedAt"))
        if since is None or finished is None or since < finished:
            return (f"degraded since {event.get('healthSince') or 'an unknown time'}, before this sync finished "
                    f"({event.get('finishedAt') or '?'}): the release did not cause it")
        start = went_live if went_live is not None else finished
        if since - start > bake:
            return (f"degraded {_span(since - start)} after the release went live ({live.get('since') or event['finishedAt']}), "
                    f"past the bake time ({bake}s)")
        return not_the_release(event, release)


def not_an_slo_alert(event: dict, alert_names, alert_namespaces) -> str | None:
    """Only the SLO alerts fnops renders (by name, and namespace when configured) roll back."""
    firing = [a for a in event.get("alerts", []) if a.get("status") == "firing"]
    names = {a.get("name") for a in firing}
    if not names & set(alert_names):
        return "not an fnops SLO alert that rolls back (rollback.alertNames: the fast burns)"
    if alert_namespaces and not any(a.get("namespace") in alert_namespaces for a in firing
                                    if a.get("name") in alert_names):
        return "the SLO alert is from a namespace outside rollback.alertNamespaces"
    return None


def not_the_release(event: dict, release: dict) -> str | None:
    """Why a degraded resource is not the new release's own (None: it is): the function's
    Knative Service or Deployment, or the Knative Revision the pin recorded for this release
    — never a ScaledObject in fallback, a source, or another function's object, whose fault
    rolling the image back would not fix."""
    if event.get("resourceHealth") == "appTree":
        return ("which resource is degraded is not in the Application (resourceHealthSource: appTree); set "
                "controller.resource.health.persist: \"true\" in argocd-cmd-params-cm for rollbacks on degradation")
    ran = release.get("ranRevision")
    workload = [r for r in event.get("degradedResources", [])
                if r.get("namespace") in ("", event.get("namespace")) and (
                    ((r.get("group"), r.get("kind")) in WORKLOADS and r.get("name") == event["function"])
                    or (ran and (r.get("group"), r.get("kind")) == REVISION and r.get("name") == ran))]
    if not workload:
        named = ", ".join(f"{r.get('kind')} {r.get('name')}" for r in event.get("degradedResources", [])) or "none"
        return (f"the degraded resource ({named}) is not the function's workload: rolling back its image "
                "would not fix it")
    return None
