"""bump / promote / rollback commands: shared flags and the Git target they write to."""

from __future__ import annotations

import os
import subprocess

import click

GITOPS_FLAGS = [
    click.option("--functions-dir", default="functions", show_default=True,
                 help="Folder of function folders, relative to the repository root."),
    click.option("--gitops-repo", "gitops_repo", metavar="URL",
                 help="Clone this repository and write there instead of the current one."),
    click.option("--branch", metavar="BRANCH", help="Branch to commit to. Default: the pushed branch "
                 "($GITHUB_REF), else the checkout's branch, else main."),
    click.option("--token-env", default="GITOPS_TOKEN", show_default=True, metavar="VAR",
                 help="Environment variable holding the token for --gitops-repo over HTTPS "
                      "(falls back to GITHUB_TOKEN). Never printed or stored."),
    click.option("--mode", type=click.Choice(["push", "pr"]), default=None,
                 help="push: commit and push to the branch (with rebase-retry); pr: push a review branch "
                      "fnops/<env>/<fn> and open (or update) a pull request. Default: push."),
    click.option("--github-repo", metavar="OWNER/NAME",
                 help="Repository for PR mode (default: from --gitops-repo's URL, else $GITHUB_REPOSITORY)."),
]


def gitops_flags(f):
    for opt in reversed(GITOPS_FLAGS):
        f = opt(f)
    return f


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


def source_from_environment(repo: str = "."):
    """Where the released code came from: GitHub Actions variables, else the local clone."""
    from .releases import Source

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


def report(sha, changes, pr=None) -> None:
    from .releases import short

    if sha is None:
        click.echo("nothing to commit: the pin is already up to date")
        return
    for c in changes:
        click.echo(f"{c.action} {c.function} [{c.environment}] -> {short(c.image)}")
    click.echo(f"pushed {sha}")
    if pr:
        click.echo(f"pull request: {pr}")
