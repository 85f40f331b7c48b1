"""Where a release comes from and where it goes: the source commit, the target branch and
the token, read from GitHub Actions' variables or the local clone."""

from __future__ import annotations

import os
import subprocess
from collections import namedtuple

Source = namedtuple("Source", "repo commit ref run", defaults=(None, None, None, None))


def resolve_branch(branch: str | None, repo: str = ".") -> str:
    if branch:
        return branch
    ref = os.environ.get("GITHUB_REF", "")
    if ref.startswith("refs/heads/"):
        return ref[len("refs/heads/"):]
    p = subprocess.run(["git", "symbolic-ref", "--quiet", "--short", "HEAD"], cwd=repo, capture_output=True, text=True)
    return p.stdout.strip() if p.returncode == 0 and p.stdout.strip() else "main"


def github_host() -> str:
    server = os.environ.get("GITHUB_SERVER_URL") or "https://github.com"
    return server.split("://", 1)[-1].split("/", 1)[0].lower()


def remote_url(repo: str = ".") -> str | None:
    p = subprocess.run(["git", "remote", "get-url", "origin"], cwd=repo, capture_output=True, text=True)
    return p.stdout.strip() or None if p.returncode == 0 else None


def token_from(var: str, url: str | None = None, repo: str = ".") -> str | None:
    """The token for the remote fnops writes to: `$var` (GITOPS_TOKEN) as configured, or
    GITHUB_TOKEN — but that one only when the remote is on the GitHub host it was issued for."""
    explicit = os.environ.get(var)
    if explicit:
        return explicit
    github = os.environ.get("GITHUB_TOKEN")
    if not github:
        return None
    target = url or remote_url(repo) or ""
    host = target.split("://", 1)[1].split("/", 1)[0].rsplit("@", 1)[-1].lower() if "://" in target else ""
    return github if host == github_host() else None


def source_from_environment(repo: str = ".") -> Source:
    """Where the released code came from: GitHub Actions variables, else the local clone."""
    env = os.environ
    if env.get("GITHUB_SHA"):
        run = None
        if env.get("GITHUB_RUN_ID"):
            run = f"{env.get('GITHUB_SERVER_URL', 'https://github.com')}/{env.get('GITHUB_REPOSITORY')}/actions/runs/{env['GITHUB_RUN_ID']}"
        return Source(env.get("GITHUB_REPOSITORY"), env["GITHUB_SHA"], env.get("GITHUB_REF"), run)
    p = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True)
    if p.returncode != 0:
        return Source()
    ref = subprocess.run(["git", "symbolic-ref", "--quiet", "HEAD"], cwd=repo, capture_output=True, text=True)
    return Source(None, p.stdout.strip(), ref.stdout.strip() or None, None)
