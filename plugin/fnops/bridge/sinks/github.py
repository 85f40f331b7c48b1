"""GitHub: a commit status and a Deployment on the *source* commit the developer pushed.

Status context `fnops/<env>/<fn>`, description ≤ 140 characters, skipped when unchanged.
The Deployment is for the exact SHA (auto_merge false, no required contexts) with
statuses in_progress → success / failure, and inactive once rolled back. Ids are kept in
the store so retries and restarts reuse them."""

from __future__ import annotations

from ...errors import PermanentError
from . import Sink
from .common import argocd_url, detail, short_image, truncate
from .http import raise_for

COMMIT_STATE = {"syncing": "pending", "deployed": "success", "degraded": "failure", "sync-failed": "failure",
                "alert-firing": "failure", "rolled-back": "failure", "rollback-proposed": "failure"}
DEPLOY_STATE = {"syncing": "in_progress", "deployed": "success", "degraded": "failure", "sync-failed": "failure",
                "rolled-back": "inactive"}


class GitHubSink(Sink):
    name = "github"

    def __init__(self, cfg):
        from github import Auth, Github

        kw = {"base_url": cfg.base_url} if cfg.base_url else {}
        self.gh = Github(auth=Auth.Token(cfg.token), retry=None, timeout=15, **kw)
        self.base = (cfg.base_url or "https://api.github.com").rstrip("/")

    def _request(self, verb: str, path: str, body=None):
        from github import GithubException

        try:
            _, data = self.gh.requester.requestJsonAndCheck(verb, f"{self.base}{path}", input=body)
            return data
        except GithubException as e:
            msg = (e.data or {}).get("message", "") if isinstance(e.data, dict) else ""
            raise_for(f"github {verb} {path}", e.status, msg, e.headers)
        except OSError as e:
            raise_for(f"github {verb} {path}", None, str(e))

    def deliver(self, event: dict, ctx):
        release = ctx.release(event) or {}
        source = release.get("source") or {}
        repo, sha = source.get("repo"), source.get("commit")
        if not repo or not sha:
            raise PermanentError(f"github: the release of {event['function']} in {event['environment']} "
                                 "records no source repo/commit")
        fn, env = event["function"], event["environment"]
        state = COMMIT_STATE.get(event["kind"])
        if state:
            context = f"fnops/{env}/{fn}"
            description = truncate(f"{detail(event)} ({short_image(release.get('image'))})", 140)
            last = ctx.store.get("github-status", f"{repo}|{sha}|{context}")
            if last != [state, description]:
                body = {"state": state, "context": context, "description": description}
                if argocd_url(event):
                    body["target_url"] = argocd_url(event)
                self._request("POST", f"/repos/{repo}/statuses/{sha}", body)
                ctx.store.put("github-status", f"{repo}|{sha}|{context}", [state, description])
        dstate = DEPLOY_STATE.get(event["kind"])
        if dstate:
            dkey = f"{repo}|{sha}|{env}|{fn}"
            did = ctx.store.get("github-deployment", dkey)
            if did is None:
                d = self._request("POST", f"/repos/{repo}/deployments", {
                    "ref": sha, "environment": env, "auto_merge": False, "required_contexts": [],
                    "description": truncate(f"{fn} {short_image(release.get('image'))}", 140),
                    "payload": {"function": fn, "image": release.get("image") or ""},
                    "transient_environment": False, "production_environment": env in ("prod", "production")})
                did = d["id"]
                ctx.store.put("github-deployment", dkey, did)
            skey = f"{did}|{event['id']}"
            if ctx.store.get("github-deployment-status", skey) is None:
                body = {"state": dstate, "description": truncate(detail(event), 140)}
                if argocd_url(event):
                    body["log_url"] = argocd_url(event)
                self._request("POST", f"/repos/{repo}/deployments/{did}/statuses", body)
                ctx.store.put("github-deployment-status", skey, dstate)
        return None
