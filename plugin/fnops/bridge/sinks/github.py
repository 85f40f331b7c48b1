"""GitHub: a commit status and a Deployment on the *source* commit the developer pushed.

Status context `fnops/<env>/<fn>`, description ≤ 140 characters, skipped when unchanged.
The Deployment is for the exact SHA (auto_merge false, no required contexts) with
statuses in_progress → success / failure, and inactive once rolled back. Ids are kept in
the store so retries and restarts reuse them.

The repository comes from a pin, which anyone with push access to the GitOps repo writes:
it must be `owner/name` and match `github.allowedRepos` (default: the GitOps repo's own
org), the SHA must be a full commit SHA, and every path segment is quoted — the token never
reaches another repository or API path. Writes are paced (`github.minWriteInterval`, 1 s
by default, as GitHub asks of integrations) inside this sink's own lane, so the pacing
delays no other sink."""

from __future__ import annotations

import fnmatch
import threading
import time
from urllib.parse import quote

from ...errors import PermanentError
from . import Sink
from .common import argocd_url, detail, short_image, truncate, valid_repo, valid_sha
from .http import raise_for

COMMIT_STATE = {"syncing": "pending", "deployed": "success", "degraded": "failure", "sync-failed": "failure",
                "alert-firing": "failure", "rolled-back": "failure", "rollback-proposed": "failure"}
DEPLOY_STATE = {"syncing": "in_progress", "deployed": "success", "degraded": "failure", "sync-failed": "failure",
                "rolled-back": "inactive"}


class GitHubSink(Sink):
    name = "github"

    def __init__(self, cfg, argocd_base: str | None = None, timeout: float = 15):
        from github import Auth, Github

        kw = {"base_url": cfg.base_url} if cfg.base_url else {}
        # PyGithub's own pacing would sleep inside every call; this sink paces its writes.
        self.gh = Github(auth=Auth.Token(cfg.token), retry=None, timeout=timeout, seconds_between_requests=None,
                         seconds_between_writes=None, **kw)
        self.base = (cfg.base_url or "https://api.github.com").rstrip("/")
        self.allowed, self.pace, self.argocd = cfg.allowed_repos, cfg.min_write_interval, argocd_base
        self._last_write = 0.0
        self._pace_lock = threading.Lock()

    def allows(self, repo: str) -> bool:
        return valid_repo(repo) and any(fnmatch.fnmatchcase(repo.lower(), pat.lower()) for pat in self.allowed)

    def _request(self, verb: str, path: str, body=None):
        from github import GithubException

        if verb != "GET" and self.pace:
            with self._pace_lock:
                wait = self._last_write + self.pace - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
                self._last_write = time.monotonic()
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
        if not valid_sha(sha):
            raise PermanentError("github: the pin's source.commit is not a full commit SHA")
        if not self.allows(repo):
            raise PermanentError(f"github: source.repo of {event['function']} in {event['environment']} is not an "
                                 "allowed repository (github.allowedRepos); nothing sent")
        owner, name = (quote(part, safe="") for part in repo.split("/"))
        api = f"/repos/{owner}/{name}"
        fn, env = event["function"], event["environment"]
        link = argocd_url(self.argocd, event)
        state = COMMIT_STATE.get(event["kind"])
        if state:
            context = f"fnops/{env}/{fn}"
            description = truncate(f"{detail(event)} ({short_image(release.get('image'))})", 140)
            last = ctx.store.get("github-status", f"{repo}|{sha}|{context}")
            if last != [state, description]:
                body = {"state": state, "context": context, "description": description}
                if link:
                    body["target_url"] = link
                self._request("POST", f"{api}/statuses/{sha}", body)
                ctx.store.put("github-status", f"{repo}|{sha}|{context}", [state, description])
        dstate = DEPLOY_STATE.get(event["kind"])
        if dstate:
            dkey = f"{repo}|{sha}|{env}|{fn}"
            did = ctx.store.get("github-deployment", dkey)
            if did is None:
                d = self._request("POST", f"{api}/deployments", {
                    "ref": sha, "environment": env, "auto_merge": False, "required_contexts": [],
                    "description": truncate(f"{fn} {short_image(release.get('image'))}", 140),
                    "payload": {"function": fn, "image": release.get("image") or ""},
                    "transient_environment": False, "production_environment": env in ("prod", "production")})
                did = d["id"]
                ctx.store.put("github-deployment", dkey, did)
            skey = f"{did}|{event['id']}"
            if ctx.store.get("github-deployment-status", skey) is None:
                body = {"state": dstate, "description": truncate(detail(event), 140)}
                if link:
                    body["log_url"] = link
                self._request("POST", f"{api}/deployments/{int(did)}/statuses", body)
                ctx.store.put("github-deployment-status", skey, dstate)
        return None
