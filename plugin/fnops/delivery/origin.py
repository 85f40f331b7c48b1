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


def token_from(var: str) -> str | None:
    return os.environ.get(var) or os.environ.get("GITHUB_TOKEN") or None


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
