"""Guarded rollback in Git. A degraded or failed release, or an SLO alert within the bake
time of the release, restores `previous` with a rollback commit (`rollback: auto`) or a
pull request (`rollback: pr`); `off` only reports. Guards — never roll back a rollback,
at most one rollback per release, nothing without a previous release, nothing when a newer
release already replaced it — are reported as events, never silent."""

from __future__ import annotations

import calendar
import time

from ...delivery import commits, pins
from ...errors import PermanentError, TemporaryError
from . import Sink


def _epoch(ts: str | None) -> float | None:
    try:
        return calendar.timegm(time.strptime(ts, "%Y-%m-%dT%H:%M:%SZ")) if ts else None
    except ValueError:
        return None


class RollbackSink(Sink):
    name = "rollback"
    kinds = ("degraded", "sync-failed", "alert-firing")

    def __init__(self, gitops_cfg, rollback_cfg, github_cfg):
        self.gitops, self.bake, self.github = gitops_cfg, rollback_cfg.bake_seconds, github_cfg
        self.alert_names, self.alert_namespaces = rollback_cfg.alert_names, rollback_cfg.alert_namespaces

    def _followup(self, event, kind, release, **extra):
        return [{"source": "fnops", "kind": kind, "function": event["function"], "environment": event["environment"],
                 "revision": event.get("revision", ""), "app": event.get("app"),
                 "release": release, "cause": event["key"], "key": f"rollback:{event['key']}:{kind}", **extra}]

    def _not_an_slo_alert(self, event: dict) -> str | None:
        """Only the SLO alerts fnops renders (by name, and namespace when configured) roll back."""
        firing = [a for a in event.get("alerts", []) if a.get("status") == "firing"]
        names = {a.get("name") for a in firing}
        if not names & set(self.alert_names):
            return "not an fnops SLO alert that rolls back (rollback.alertNames: the fast burns)"
        spaces = self.alert_namespaces
        if spaces and not any(a.get("namespace") in spaces for a in firing if a.get("name") in self.alert_names):
            return "the SLO alert is from a namespace outside rollback.alertNamespaces"
        return None

    def deliver(self, event: dict, ctx):
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
        mode = release.get("rollbackMode", "off")
        if mode == "off":
            return None
        if mode == "pr" and not self.github:
            raise PermanentError("rollback: pr needs the github section (token) in the bridge config")
        skip = lambda reason: self._followup(event, "rollback-skipped", release, reason=reason)  # noqa: E731
        if event.get("rollback") or release.get("rollbackOf"):
            return skip("this release is itself a rollback; not rolling back a rollback")
        if not (release.get("previous") or {}).get("image"):
            return skip("no previous release recorded")
        if event["kind"] == "alert-firing":
            why_not = self._not_an_slo_alert(event)
            if why_not:
                return skip(why_not)
            released = _epoch(release.get("releasedAt"))
            if released is None or time.time() - released > self.bake:
                return skip(f"alert outside the bake time ({self.bake}s) of the release")
        current = ctx.release_at_tip(event)
        if current and current.get("image") != release.get("image"):
            return skip(f"superseded: {event['environment']} now pins {current.get('image')}")
        # At most one rollback per release, across restarts; the same event may retry.
        guard = f"{event['function']}|{event['environment']}|{release['image']}"
        if not ctx.store.claim("rollback-guard", guard, event["id"]) and ctx.store.get("rollback-guard", guard) != event["id"]:
            return skip("this release was already rolled back once")
        op = pins.PinOp(self.gitops.functions_dir, event["function"], event["environment"], "rollback")
        why = f"Automatic rollback by the fnops bridge: {event['kind']} ({event['key']})."
        kw = {}
        if mode == "pr":
            kw = {"mode": "pr", "api_url": self.github.base_url, "api_token": self.github.token,
                  "github_repo": self.gitops.github_repo}
        try:
            sha, changes, pr = commits.commit_pins([op], repo=None, url=self.gitops.repo, branch=self.gitops.branch,
                                            token=self.gitops.token, why=why, **kw)
        except pins.Refused as e:
            return skip(str(e))
        except PermanentError:
            raise
        except Exception as e:  # git transport trouble: the outbox retries
            raise TemporaryError(f"rollback: {e}") from None
        restored = changes[0].image if changes else None
        if mode == "pr":
            return self._followup(event, "rollback-proposed", release, pullRequest=pr, commit=sha, restoredImage=restored)
        return self._followup(event, "rolled-back", release, commit=sha, restoredImage=restored)
