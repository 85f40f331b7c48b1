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
                "render-failed": "failure", "alert-firing": "failure", "rolled-back": "failure", "rollback-proposed": "failure"}
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

    # Exactly once across a crash: an intent is recorded before each write. Finding one
    # without the write's record means this event was being delivered when its replica died
    # — the request may have landed — so GitHub is asked first. A first delivery asks nothing.
    def _crashed_before(self, ctx, eid: int, what: str) -> bool:
        return not ctx.store.claim("github-intent", f"{eid}:{what}", 1)

    def _status_exists(self, api: str, sha: str, context: str, state: str, description: str) -> bool:
        combined = self._request("GET", f"{api}/commits/{sha}/status") or {}
        return any(s.get("context") == context and s.get("state") == state and s.get("description") == description
                   for s in combined.get("statuses") or [])

    def _find_deployment(self, api: str, sha: str, env: str, fn: str):
        for d in self._request("GET", f"{api}/deployments?sha={sha}&environment={quote(env, safe='')}") or []:
            if isinstance(d.get("payload"), dict) and d["payload"].get("function") == fn:
                return d.get("id")
        return None

    def _deployment_status_exists(self, api: str, did: int, state: str, description: str) -> bool:
        statuses = self._request("GET", f"{api}/deployments/{did}/statuses") or []
        return any(s.get("state") == state and s.get("description") == description for s in statuses)

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
        eid = event["id"]
        state = COMMIT_STATE.get(event["kind"])
        if state:
            context = f"fnops/{env}/{fn}"
            description = truncate(f"{detail(event)} ({short_image(release.get('image'))})", 140)
            record = f"{repo}|{sha}|{context}"
            if ctx.store.get("github-status", record) != [state, description]:
                if not (self._crashed_before(ctx, eid, "status") and self._status_exists(api, sha, context, state,
                                                                                          description)):
                    body = {"state": state, "context": context, "description": description}
                    if link:
                        body["target_url"] = link
                    self._request("POST", f"{api}/statuses/{sha}", body)
                ctx.store.put("github-status", record, [state, description])
        dstate = DEPLOY_STATE.get(event["kind"])
        if dstate:
            dkey = f"{repo}|{sha}|{env}|{fn}"
            did = ctx.store.get("github-deployment", dkey)
            if did is None and self._crashed_before(ctx, eid, "deployment"):
                did = self._find_deployment(api, sha, env, fn)
            if did is None:
                d = self._request("POST", f"{api}/deployments", {
                    "ref": sha, "environment": env, "auto_merge": False, "required_contexts": [],
                    "description": truncate(f"{fn} {short_image(release.get('image'))}", 140),
                    "payload": {"function": fn, "image": release.get("image") or ""},
                    "transient_environment": False, "production_environment": env in ("prod", "production")})
                did = d["id"]
            ctx.store.put("github-deployment", dkey, did)
            skey = f"{did}|{eid}"
            if ctx.store.get("github-deployment-status", skey) is None:
                description = truncate(detail(event), 140)
                if not (self._crashed_before(ctx, eid, "deployment-status")
                        and self._deployment_status_exists(api, int(did), dstate, description)):
                    body = {"state": dstate, "description": description}
                    if link:
                        body["log_url"] = link
                    self._request("POST", f"{api}/deployments/{int(did)}/statuses", body)
                ctx.store.put("github-deployment-status", skey, dstate)
        return None
