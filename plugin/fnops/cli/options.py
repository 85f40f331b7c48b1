"""Flags shared by the commands that write pins (bump, promote, rollback, ship)."""

from __future__ import annotations

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
                      "(falls back to GITHUB_TOKEN, for a remote on the GitHub host only). Never printed "
                      "or stored."),
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


def env_name(ctx, param, value):
    """Environment names become file names and labels: DNS labels only."""
    from ..spec.units import is_dns1123_label, shown

    if value is not None and not is_dns1123_label(value):
        raise click.BadParameter(f"'{shown(value)}' is not an environment name (lowercase letters, digits, '-', at most 63)")
    return value


def function_name(ctx, param, value):
    """A FUNCTION argument names a folder: a DNS-1035 label before it touches a path."""
    from ..spec.function import MAX_NAME
    from ..spec.units import is_dns1035, shown

    if value is not None and not is_dns1035(value, MAX_NAME):
        raise click.BadParameter(f"'{shown(value)}' is not a function name (lowercase letters, digits and '-', "
                                 f"starting with a letter, at most {MAX_NAME} characters)")
    return value

