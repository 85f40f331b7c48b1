"""Pull requests through PyGithub: open one per review branch, or update the open one.

Imported only in PR mode: PyGithub (and requests) never load for render or push mode.
"""

from __future__ import annotations

import os
import re
import sys

from ..errors import PermanentError, TemporaryError, UsageError
from ..escape import printable, workflow_data


def repo_slug(url_or_slug: str | None) -> str:
    """owner/name from a GitHub remote URL, or $GITHUB_REPOSITORY."""
    if url_or_slug:
        m = re.search(r"github\.com[:/]([\w.-]+)/([\w.-]+?)(?:\.git)?/?$", url_or_slug)
        if m:
            return f"{m.group(1)}/{m.group(2)}"
        if re.fullmatch(r"[\w.-]+/[\w.-]+", url_or_slug):
            return url_or_slug
    env = os.environ.get("GITHUB_REPOSITORY")
    if env:
        return env
    raise UsageError("PR mode needs the GitHub repository: pass --github-repo OWNER/NAME or set GITHUB_REPOSITORY")


def github_slug(url_or_slug: str | None) -> str | None:
    """repo_slug, or None where no GitHub repository is named (a GitLab, Gitea or bare
    remote, and no $GITHUB_REPOSITORY): PR mode then pushes only the review branch."""
    try:
        return repo_slug(url_or_slug)
    except UsageError:
        return None


def say_open_it(head: str, base: str, remote: str | None) -> None:
    """PR mode without GitHub: the review branch is pushed; say who opens the request."""
    from .gitops import redact_url

    where = f" to {redact_url(remote)}" if remote else ""
    text = (f"pushed the review branch {head}{where}, but opened no pull request: fnops opens them through "
            f"GitHub's API only and this remote is not on GitHub (if it is, pass --github-repo OWNER/NAME). "
            f"Open a merge request from {head} into {base} on your Git host; merging it deploys")
    if os.environ.get("GITHUB_ACTIONS") == "true":
        print(f"::notice::{workflow_data(text)}", file=sys.stderr, flush=True)
    else:
        print(f"fnops: {printable(text)}", file=sys.stderr, flush=True)


def body_for(changes, why: str | None) -> str:
    from .pins import short

    rows = ["| function | environment | new image | replaces |", "|---|---|---|---|"]
    for c in changes:
        rows.append(f"| `{c.function}` | `{c.environment}` | `{short(c.image)}` | "
                    f"{'`' + short(c.previous_image) + '`' if c.previous_image else '—'} |")
    src = [f"- `{c.function}`: source `{c.source['commit']}`" for c in changes if (c.source or {}).get("commit")]
    parts = [why or "", "\n".join(rows)]
    if src:
        parts.append("\n".join(src))
    parts.append("<sub>Opened by fnops. Merging this pull request deploys through Argo CD.</sub>")
    return "\n\n".join(p for p in parts if p)


# What GitHub's 403s mean for fnops, and the setting that changes each.
ACTIONS_MAY_NOT_OPEN_PRS = "not permitted to create or approve pull requests"
ENABLE_ACTIONS_PRS = ("enable Settings → Actions → General → Workflow permissions → \"Allow GitHub Actions to "
                      "create and approve pull requests\" (an organization's repository: first in the organization's "
                      "Settings → Actions → General), or pass a GitHub App installation token or a PAT as the "
                      "action's `token` (GITOPS_TOKEN)")
NO_PR_PERMISSION = ("give the token pull request write access: `permissions: {contents: write, pull-requests: write}` "
                    "on this job, or the App / PAT passed as `token`")


def refusal_hint(status: int, message) -> str | None:
    text = str(message or "").lower()
    if status == 403 and ACTIONS_MAY_NOT_OPEN_PRS in text:
        return ENABLE_ACTIONS_PRS
    if status == 403 and "resource not accessible by integration" in text:
        return NO_PR_PERMISSION
    return None


class PullRequests:
    """A connection to one repository's pull requests. Connecting reads the repository, so
    a bad token or an outage stops the run *before* anything is pushed."""

    def __init__(self, slug: str, token: str | None, api_url: str | None = None):
        if not token:
            raise UsageError("PR mode needs a token: set GITOPS_TOKEN or GITHUB_TOKEN")
        from github import Auth, Github

        self.slug = slug
        self.gh = Github(base_url=api_url or os.environ.get("GITHUB_API_URL") or "https://api.github.com",
                         auth=Auth.Token(token), retry=None, timeout=30)
        self.repo = self._call(lambda: self.gh.get_repo(slug))

    def _call(self, fn):
        from github import GithubException

        try:
            return fn()
        except GithubException as e:
            msg = (e.data or {}).get("message") if isinstance(e.data, dict) else str(e.data)
            if e.status >= 500 or e.status == 429:
                raise TemporaryError(f"GitHub is unavailable ({e.status} {msg}); retry later") from None
            hint = refusal_hint(e.status, msg)
            said = printable(msg).rstrip(".") + f": {hint}" if hint else printable(msg)
            raise PermanentError(f"GitHub refused the request for {self.slug}: {e.status} {said}") from None

    def open_or_update(self, *, head: str, base: str, title: str, body: str, comment: bool = True) -> str:
        """-> the pull request's html URL. An open PR for `head` gets a comment saying what
        the new push changed (when `comment`), instead of a second PR."""
        owner = self.slug.split("/")[0]

        def go():
            open_prs = list(self.repo.get_pulls(state="open", head=f"{owner}:{head}", base=base))
            if open_prs:
                pr = open_prs[0]
                if comment:
                    pr.create_issue_comment(f"Updated by fnops:\n\n{body}")
                return pr.html_url
            url = self.repo.create_pull(title=title, body=body, head=head, base=base).html_url
            if os.environ.get("GITHUB_ACTIONS") == "true" and os.environ.get("FNOPS_TOKEN_IS_GITHUB_TOKEN") == "true":
                # GitHub starts no workflow run for events caused by GITHUB_TOKEN.
                print(f"::notice::{workflow_data(NO_CHECKS_NOTE.format(url=url))}", file=sys.stderr, flush=True)
            return url

        return self._call(go)


NO_CHECKS_NOTE = ("{url} was opened with GITHUB_TOKEN: GitHub runs no pull_request workflows for it, so its checks "
                  "wait (required checks block the merge). Pass a GitHub App installation token (e.g. "
                  "actions/create-github-app-token) or a PAT as the action's `token` for checks to run")
