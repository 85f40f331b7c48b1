"""Where a release comes from and where it goes: the source commit, the target branch and
the token, read from GitHub Actions' variables or the local clone."""

from __future__ import annotations

import os
import subprocess
from collections import namedtuple

# time: the source commit's committer time (UTC text), recorded in pins so they can be
# ordered where the source history is not at hand (a separate GitOps repository's job).
Source = namedtuple("Source", "repo commit ref run time", defaults=(None, None, None, None, None))


def resolve_branch(branch: str | None, repo: str = ".") -> str:
    if branch:
        return branch
    ref = os.environ.get("GITHUB_REF", "")
    if ref.startswith("refs/heads/"):
        return ref[len("refs/heads/"):]
    p = subprocess.run(["git", "symbolic-ref", "--quiet", "--short", "HEAD"], cwd=repo, capture_output=True, text=True)
    return p.stdout.strip() if p.returncode == 0 and p.stdout.strip() else "main"


def _host(url: str) -> str | None:
    """host[:port] of an http(s) URL, lowercase, the scheme's default port left out; None
    for anything else (ssh, a path), which no token header is sent to."""
    from urllib.parse import urlsplit

    try:
        u = urlsplit(url)
        port = u.port
    except ValueError:
        return None
    if u.scheme.lower() not in ("http", "https") or not u.hostname:
        return None
    default = {"http": 80, "https": 443}[u.scheme.lower()]
    return u.hostname + (f":{port}" if port not in (None, default) else "")


def github_host() -> str | None:
    """The host GitHub's own token was issued for: $GITHUB_SERVER_URL (GitHub Enterprise),
    else github.com."""
    return _host(os.environ.get("GITHUB_SERVER_URL") or "https://github.com")


def remote_url(repo: str = ".") -> str | None:
    p = subprocess.run(["git", "remote", "get-url", "origin"], cwd=repo, capture_output=True, text=True)
    return p.stdout.strip() or None if p.returncode == 0 else None


def token_from(var: str, url: str | None = None, repo: str = ".") -> str | None:
    """The token for the remote fnops writes to (`url`, else this clone's origin).

    `$var` (GITOPS_TOKEN) is the user's own token for the remote they named: it is used as
    given. GITHUB_TOKEN was issued by the GitHub host ($GITHUB_SERVER_URL) for it alone: it
    goes to a remote on that host and nowhere else. The actions hand the job's GitHub token
    over as GITHUB_TOKEN for this reason (actions/step-env.sh)."""
    explicit = os.environ.get(var)
    if explicit:
        return explicit
    return github_token_for(url or remote_url(repo) or "")


def github_token_for(url: str) -> str | None:
    """GITHUB_TOKEN, if `url` is on the GitHub host that issued it; else None."""
    github = os.environ.get("GITHUB_TOKEN")
    if not github:
        return None
    target = _host(url)
    return github if target is not None and target == github_host() else None


def source_from_environment(repo: str = ".") -> Source:
    """Where the released code came from: GitHub Actions variables, else the local clone."""
    env = os.environ
    if env.get("GITHUB_SHA"):
        run = None
        if env.get("GITHUB_RUN_ID"):
            run = f"{env.get('GITHUB_SERVER_URL', 'https://github.com')}/{env.get('GITHUB_REPOSITORY')}/actions/runs/{env['GITHUB_RUN_ID']}"
        sha = env["GITHUB_SHA"]
        return Source(env.get("GITHUB_REPOSITORY"), sha, env.get("GITHUB_REF"), run, commit_time(sha, repo))
    p = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True)
    if p.returncode != 0:
        return Source()
    ref = subprocess.run(["git", "symbolic-ref", "--quiet", "HEAD"], cwd=repo, capture_output=True, text=True)
    sha = p.stdout.strip()
    return Source(None, sha, ref.stdout.strip() or None, None, commit_time(sha, repo))


def commit_time(sha: str, repo: str = ".") -> str | None:
    """The commit's committer time as UTC text, if this clone has the commit."""
    from ..spec.units import utc_text
    from ..types import GitSha

    try:
        sha = GitSha(sha)
    except ValueError:
        return None
    p = subprocess.run(["git", "show", "-s", "--format=%ct", f"{sha}^{{commit}}", "--"], cwd=repo,
                       capture_output=True, text=True)
    t = p.stdout.strip()
    return utc_text(int(t)) if p.returncode == 0 and t.isascii() and t.isdigit() else None
