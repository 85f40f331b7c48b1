"""The canary lifecycle as Git commits, as Flagger runs it in a cluster.

A release whose function.yaml has `traffic.canary` (and optionally `traffic.steps`) starts
with the first step's split. When Argo CD reports that step deployed and healthy — the new
revision Ready — the bake starts (bridge/canary.py keeps its timer in the store). When the
bake ends with no abort, this sink commits the next step (`canary: {step: N}` in the pin)
or, after the last step, the promotion (`promoted: true`: 100% new, the split removed);
each commit is again deployed and baked. A fast-burn SLO alert or a degradation of the
release's own workload while the canary bakes commits the abort: the rollback pin op the
rollback sink uses, reported as a rollback (`rolled-back`, `rollback-proposed`) with
`canaryAborted`, under the function's `rollback:` mode (`off`: no commit, but the canary is
never promoted) and the one-rollback-per-release guard the rollback sink keeps. Environments with `approval: required` or `rollback: pr` get a pull
request instead of each commit.

Pins only move forward: every move is re-applied to the branch tip (gitops.publish redoes
it after a lost push race) and is refused when the tip pins another release, a rollback,
or a step already taken — a promotion for an old release never overwrites a newer pin.
Each commit message says why and links the release's run, its Argo CD application and the
alert; the outcome is a follow-up event, so the release's Slack thread hears of it.
"""

from __future__ import annotations

import time

from ...delivery import pins
from ...errors import PermanentError
from ...lazyre import LazyRe
from .. import canary as bakes
from ..events import TIMESTAMP, epoch
from ..store.base import patiently
from . import Sink
from .common import argocd_url
from .rollback import commit_pin, not_an_slo_alert, not_the_release


ALERT_NAME = LazyRe(r"[A-Za-z_][A-Za-z0-9_:.-]{0,127}")
FINGERPRINT = LazyRe(r"[0-9a-f]{1,64}")


def _shaped(value, rx) -> str:
    return value if isinstance(value, str) and rx.fullmatch(value) else "?"


class CanarySink(Sink):
    name = "canary"
    kinds = ("deployed", "degraded", "alert-firing", "canary-bake-ended")

    def __init__(self, gitops_cfg, rollback_cfg, github_cfg, argocd_base: str | None = None):
        self.gitops, self.github, self.argocd = gitops_cfg, github_cfg, argocd_base
        self.alert_names, self.alert_namespaces = rollback_cfg.alert_names, rollback_cfg.alert_namespaces

    def deliver(self, event: dict, ctx):
        if event["kind"] == "deployed":
            self._start(event, ctx)
            return None
        # A redelivery (after a crash) repeats the recorded outcome instead of deciding again.
        done = ctx.store.get("canary-outcome", event["key"])
        if done is not None:
            return done
        if event["kind"] == "canary-bake-ended":
            out = self._baked(event, ctx)
        else:
            out = self._abort(event, ctx)
        # The commit has landed: a database away now must not lose what it did (a redelivery
        # would find the pin moved and say nothing), so the records wait for it to return.
        patiently(lambda: ctx.store.put("canary-outcome", event["key"], out or []))
        return out

    # --- the bake -----------------------------------------------------------------------------

    def _start(self, event: dict, ctx) -> None:
        release = ctx.release(event)
        state = (release or {}).get("canary") or {}
        fn, env = event["function"], event["environment"]
        if state.get("state") != "baking":
            if release and release.get("image"):
                bakes.end_bake(ctx.store, fn, env)  # promoted, rolled back or no canary: nothing bakes
            return
        if event.get("health") not in ("", "Healthy"):
            return  # the new revision is not Ready: no bake yet (a degradation aborts instead)
        now = time.time()
        bakes.start_bake(ctx.store, fn, env, {
            "function": fn, "environment": env, "image": release["image"], "percent": state["percent"],
            "next": state["next"], "bakeSeconds": state["bakeSeconds"], "started": now,
            "due": now + state["bakeSeconds"], "revision": event.get("revision", ""), "app": event.get("app"),
            "cause": event["key"], "release": release, "releasedAt": release.get("releasedAt")})

    def _baked(self, event: dict, ctx):
        fn, env = event["function"], event["environment"]
        rec = ctx.store.get(bakes.NS, bakes.subject(fn, env)) or {}
        if rec.get("image") != event["image"] or rec.get("percent") != event["percent"] or rec.get("over") or \
                rec.get("releasedAt") != event.get("releasedAt"):
            return None  # a newer bake replaced it, or an abort ended it
        release = rec["release"]
        state = release.get("canary") or {}
        nxt = event["next"]
        step = None if nxt >= 100 else nxt
        waited = time.time() - event["bakeStarted"]
        what = "promote it: 100% to the new revision, split removed" if step is None else f"move it to {step}%"
        why = (f"Canary of {fn} in {env}: {event['percent']}% to {release.get('ranRevision') or 'the new revision'} "
               f"baked {int(waited)}s (bakeTime {event['bakeSeconds']}s) after Argo CD reported it deployed and "
               f"healthy, with no fast-burn SLO alert; {what}.")
        op = pins.PinOp.canary(self.gitops.functions_dir, fn, env, release["image"], step)
        follow = {"percent": event["percent"], "next": nxt, "bakeSeconds": event["bakeSeconds"]}
        outcome = self._commit(event, ctx, release, op, why + self._links(event, release), state,
                               "canary-promoted" if step is None else "canary-advanced", follow)
        patiently(lambda: bakes.end_bake(ctx.store, fn, env, release["image"]))
        return outcome

    # --- the abort ----------------------------------------------------------------------------

    def _abort(self, event: dict, ctx):
        release = ctx.release(event)
        state = (release or {}).get("canary") or {}
        if state.get("state") != "baking":
            return None  # no canary baking: the rollback sink judges the event
        fn, env = event["function"], event["environment"]
        if event["kind"] == "alert-firing":
            why_not = not_an_slo_alert(event, self.alert_names, self.alert_namespaces)
            cause = "a fast-burn SLO alert fired"
        else:
            why_not = self._not_during(event) or not_the_release(event, release)
            cause = "the release's workload is Degraded"
        if why_not:
            return self._followup(event, "canary-skipped", release, reason=f"not aborted: {why_not}")
        aborted = {"percent": state["percent"], "reason": cause}
        mode = release.get("rollbackMode", "off")
        if mode == "off":
            # Not rolled back (the function says so), but never promoted either: the bake ends here.
            bakes.end_bake(ctx.store, fn, env, release["image"], aborted=True)
            return self._followup(event, "rollback-skipped", release, canaryAborted=aborted,
                                  reason=f"{cause} during the canary's bake: it stays at {state['percent']}% and is "
                                         "not promoted (rollback: off; roll back or release a fix)")
        # At most one rollback per release, shared with the rollback sink; the same event may retry.
        guard = f"{fn}|{env}|{release['image']}"
        if not ctx.store.claim("rollback-guard", guard, event["id"]) and \
                ctx.store.get("rollback-guard", guard) != event["id"]:
            return self._followup(event, "rollback-skipped", release, reason="this release was already rolled back once")
        why = (f"Canary of {fn} in {env} aborted at {state['percent']}%: {cause} during its bake; rolling back to "
               f"{(release.get('previous') or {}).get('revision') or 'the previous release'}.")
        op = pins.PinOp(self.gitops.functions_dir, fn, env, "rollback")
        out = self._commit(event, ctx, release, op, why + self._links(event, release), state, "rolled-back",
                           {"canaryAborted": aborted})
        patiently(lambda: bakes.end_bake(ctx.store, fn, env, release["image"], aborted=True))
        return out

    @staticmethod
    def _not_during(event: dict) -> str | None:
        since, finished = epoch(event.get("healthSince")), epoch(event.get("finishedAt"))
        if since is None or finished is None or since < finished:
            return (f"degraded since {event.get('healthSince') or 'an unknown time'}, before this sync finished "
                    f"({event.get('finishedAt') or '?'})")
        return None

    # --- landing it ---------------------------------------------------------------------------

    def _links(self, event: dict, release: dict) -> str:
        lines = []
        run = (release.get("source") or {}).get("run")
        if run:
            lines.append(f"Run: {run}")
        argo = argocd_url(self.argocd, {"app": event.get("app") or f"{event['function']}-{event['environment']}"})
        if argo:
            lines.append(f"Argo CD: {argo}")
        for a in event.get("alerts", []):
            if a.get("status") == "firing":
                # Alertmanager's words land in a commit message and a PR body (Markdown, @mentions):
                # only what matches its own shape is quoted.
                name, fp, since = (_shaped(a.get(k), rx) for k, rx in
                                   (("name", ALERT_NAME), ("fingerprint", FINGERPRINT), ("startsAt", TIMESTAMP)))
                lines.append(f"Alert: {name} (fingerprint {fp}, since {since})")
        lines.append(f"Event: {event.get('cause') or event['key']}")
        return "\n\n" + "\n".join(lines)

    def _mode(self, release: dict, state: dict) -> str:
        pr = state.get("approval") == "required" or release.get("rollbackMode") == "pr"
        if pr and not self.github:
            raise PermanentError("canary: a pull-request environment needs the github section (token) in the "
                                 "bridge config")
        return "pr" if pr else "push"

    def _commit(self, event, ctx, release, op, why, state, kind, extra):
        mode = self._mode(release, state)
        try:
            sha, changes, pr = commit_pin(self.gitops, self.github, op, why, mode, "canary")
        except pins.Refused as e:
            return self._followup(event, "canary-skipped", release, reason=str(e))
        if not changes:
            return None  # already done (a redelivery after the push landed)
        if kind == "rolled-back":  # an abort is a rollback: Slack, GitHub and the audit log say so
            extra = {**extra, "restoredImage": changes[0].image}
            if mode == "pr":
                return self._followup(event, "rollback-proposed", release, pullRequest=pr, commit=sha, **extra)
        elif mode == "pr":
            return self._followup(event, "canary-proposed", release, pullRequest=pr, commit=sha,
                                  proposed=kind, **extra)
        return self._followup(event, kind, release, commit=sha, **extra)

    @staticmethod
    def _followup(event, kind, release, **extra):
        return [{"source": "fnops", "kind": kind, "function": event["function"], "environment": event["environment"],
                 "revision": event.get("revision", ""), "app": event.get("app"), "release": release,
                 "cause": event.get("cause") or event["key"], "key": f"canary:{event['key']}:{kind}", **extra}]
