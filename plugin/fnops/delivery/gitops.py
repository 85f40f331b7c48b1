"""Git operations shared by ship, bump, promote, rollback and the bridge.

One rule makes concurrent bumps safe: a change is a *function of the branch tip*. We check
out the tip of the target branch in a scratch work tree, apply the change, commit and push
without force. If the push is rejected because someone else pushed first, we fetch the new
tip and redo the whole read-modify-write there (after a jittered backoff), so every bump
lands in a linear history and none is lost or overwritten blindly. The user's own checkout
and its uncommitted files are never touched.

Tokens reach git only through GIT_CONFIG_* environment variables of the child process: never
in argv (visible in `ps`), never in the clone's .git/config, and redacted from any message.
The header is scoped to the exact remote (`http.<url>.extraHeader`), so a redirect or a
submodule elsewhere never receives it, and it is refused over plain HTTP off loopback.
"""

from __future__ import annotations

import base64
import os
import random
import re
import shutil
import subprocess
import tempfile
import time
from contextlib import contextmanager

from ..errors import FnopsError, PermanentError, TemporaryError, UsageError
from ..escape import printable

# Who commits when git has no identity configured (git's own GIT_AUTHOR_*/GIT_COMMITTER_*
# variables and user.name/user.email win). In GitHub Actions: the github-actions[bot]
# account, whose token pushes the commit. Elsewhere (the bridge, a laptop) a name at a
# reserved domain, never `<login>@users.noreply.github.com`, which is some real GitHub user.
ACTIONS_BOT = ("github-actions[bot]", "41898282+github-actions[bot]@users.noreply.github.com")
OTHER_BOT = ("fnops", "fnops@fnops.invalid")
REJECTED = ("[rejected]", "non-fast-forward", "fetch first", "failed to update ref", "cannot lock ref",
            "incorrect old value", "stale info")


class GitError(FnopsError):
    pass


class PushRaceLost(TemporaryError):
    pass


class Conflict(PermanentError):
    """The branch moved in a way the change cannot be re-applied to."""


def _is_loopback_host(host: str) -> bool:
    host = host.rsplit("@", 1)[-1]
    host = host[1:host.index("]")] if host.startswith("[") and "]" in host else host.rsplit(":", 1)[0]
    return host in ("localhost", "::1") or host.startswith("127.")


def check_remote(url: str) -> str:
    """A remote URL fnops may hand to git: never one git would read as an option."""
    if not url or url.startswith("-") or any(c in url for c in "\r\n\0"):
        raise UsageError(f"'{url[:80]!r}' is not a Git remote URL")
    return url


def auth_scope(url: str | None) -> str | None:
    """The `http.<url>` key a token may be sent under, or None when the remote needs no
    HTTP auth (ssh, file, a local path). Plain HTTP is refused unless it is loopback."""
    if not url or "://" not in url:
        return None
    scheme, rest = url.split("://", 1)
    host = rest.split("/", 1)[0]
    scheme = scheme.lower()
    if scheme == "https":
        return f"https://{host.rsplit('@', 1)[-1]}/{rest.split('/', 1)[1] if '/' in rest else ''}"
    if scheme == "http":
        if not _is_loopback_host(host):
            raise UsageError(f"refusing to send a token over plain http to {redact_url(url)}; use https")
        return f"http://{host.rsplit('@', 1)[-1]}/{rest.split('/', 1)[1] if '/' in rest else ''}"
    return None


class Git:
    def __init__(self, cwd: str, token: str | None = None, url: str | None = None):
        """`url`: the remote the token is for; without one the token is not used."""
        self.cwd = cwd
        self.token = token
        self.env = dict(os.environ)
        self.env.update({"GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "true", "LC_ALL": "C"})
        scope = auth_scope(url) if token else None
        if token and scope:
            basic = base64.b64encode(f"x-access-token:{token}".encode()).decode()
            self._secrets = (token, basic)
            n = int(self.env.get("GIT_CONFIG_COUNT", "0") or 0)
            self.env.update({"GIT_CONFIG_COUNT": str(n + 1), f"GIT_CONFIG_KEY_{n}": f"http.{scope}.extraHeader",
                             f"GIT_CONFIG_VALUE_{n}": f"Authorization: Basic {basic}"})
        else:
            self._secrets = (token,) if token else ()

    def redact(self, text: str) -> str:
        for s in self._secrets:
            text = text.replace(s, "***")
        return text

    def run(self, *args: str, check: bool = True, cwd: str | None = None) -> subprocess.CompletedProcess:
        p = subprocess.run(["git", *args], cwd=cwd or self.cwd, env=self.env, capture_output=True, text=True)
        if check and p.returncode != 0:
            msg = self.redact((p.stderr or p.stdout).strip().splitlines()[-1] if (p.stderr or p.stdout).strip() else "")
            raise GitError(f"git {args[0]} failed: {msg}")
        return p

    def out(self, *args: str) -> str:
        return self.run(*args).stdout.strip()


def bot_identity(env=None) -> tuple[str, str]:
    env = os.environ if env is None else env
    return ACTIONS_BOT if env.get("GITHUB_ACTIONS") == "true" else OTHER_BOT


def _identity(git: Git) -> list[str]:
    """Commit as the configured user, else as the bot (`bot_identity`)."""
    name, email = bot_identity(git.env)
    args = []
    if git.run("config", "user.name", check=False).returncode != 0 and "GIT_AUTHOR_NAME" not in git.env:
        args += ["-c", f"user.name={name}"]
    if git.run("config", "user.email", check=False).returncode != 0 and "GIT_AUTHOR_EMAIL" not in git.env:
        args += ["-c", f"user.email={email}"]
    return args


@contextmanager
def scratch_tree(repo: str | None, url: str | None, branch: str, token: str | None = None):
    """A work tree at the tip of `branch`: a worktree of the local clone `repo` (remote
    origin), or a fresh clone of `url`. Removed afterwards."""
    tmp = tempfile.mkdtemp(prefix="fnops-gitops-")
    try:
        check_branch(branch)
        if url:
            check_remote(url)
            git = Git(tmp, token, url)
            p = git.run("clone", "--quiet", "--no-tags", "--single-branch", "--branch", branch, "--", url, "tree",
                        check=False)
            if p.returncode != 0:
                raise _classify(git, p, f"cannot clone {redact_url(url)} (branch {branch})")
            tree = Git(os.path.join(tmp, "tree"), token, url)
            yield tree
        else:
            probe = Git(repo or ".")
            if probe.run("rev-parse", "--git-dir", check=False).returncode != 0:
                raise FnopsError(f"{os.path.abspath(repo or '.')} is not a Git repository; run inside a clone or pass --gitops-repo")
            origin = probe.run("remote", "get-url", "origin", check=False).stdout.strip() or None
            base = Git(repo or ".", token, origin)
            _fetch(base, branch)
            path = os.path.join(tmp, "tree")
            base.run("worktree", "add", "--quiet", "--detach", path, f"refs/remotes/origin/{branch}")
            try:
                yield Git(path, token, origin)
            finally:
                base.run("worktree", "remove", "--force", path, check=False)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def check_branch(branch: str) -> str:
    """A branch name git accepts, and never one it would read as an option."""
    ok = branch and not branch.startswith("-") and subprocess.run(
        ["git", "check-ref-format", "--branch", branch], capture_output=True).returncode == 0
    if not ok:
        raise UsageError(f"'{branch[:80]!r}' is not a branch name")
    return branch


def redact_url(url: str) -> str:
    """https://user:secret@host/x -> https://***@host/x"""
    if "://" in url and "@" in url.split("://", 1)[1].split("/", 1)[0]:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url


# GitHub explains a refused push on `remote:` lines (GH006 protected branch, GH013 rulesets,
# …), above git's generic "failed to push some refs"; the options are the same for all.
_RULE = re.compile(r"^remote:\s*(?:error:\s*)?(GH\d{3}\b.*)$")
PROTECTED_HINT = ("fnops pushes pins to the branch itself: leave that branch unprotected for this token, allow a "
                  "GitHub App to bypass the rule and pass its token as `token:`, use mode: pr, or write to a "
                  "separate gitops-repo")


def remote_rule(text: str) -> str | None:
    """GitHub's reason for refusing a push, one line: the `GHxxx` line and the rule lines
    after it (what a ruleset requires), or None when there is no such line."""
    lines = [line.rstrip() for line in text.splitlines()]
    for i, line in enumerate(lines):
        m = _RULE.match(line.strip())
        if not m:
            continue
        parts = [m.group(1).strip().rstrip(".")]
        for more in lines[i + 1:]:
            if not more.startswith("remote:"):
                break
            body = more[len("remote:"):].strip()
            body = body[len("error:"):].strip() if body.startswith("error:") else body
            body = body.lstrip("-* ").strip()
            if body and not body.lower().startswith("review all repository rules"):
                parts.append(body.rstrip("."))
            if len(parts) >= 4:
                break
        return printable("; ".join(parts))[:400]
    return None


def _classify(git: Git, p: subprocess.CompletedProcess, what: str) -> FnopsError:
    text = git.redact((p.stderr or "").strip())
    last = text.splitlines()[-1] if text else "no output"
    rule = remote_rule(text)
    if rule:
        return PermanentError(f"{what}: GitHub refused it: {rule} ({PROTECTED_HINT})")
    low = text.lower()
    if any(s in low for s in ("authentication failed", "403", "401", "permission denied", "could not read username",
                              "terminal prompts disabled")):
        return PermanentError(f"{what}: authentication failed (check the token's access to this repository)")
    if any(s in low for s in ("could not resolve host", "connection refused", "timed out", "unable to access")):
        return TemporaryError(f"{what}: {last}")
    return GitError(f"{what}: {last}")


def _fetch(git: Git, branch: str) -> None:
    p = git.run("fetch", "--quiet", "--no-tags", "origin", f"+refs/heads/{branch}:refs/remotes/origin/{branch}",
                check=False)
    if p.returncode != 0:
        raise _classify(git, p, f"cannot fetch branch {branch} from origin")


def publish(tree: Git, branch: str, change, *, attempts: int = 10, base_delay: float = 0.1,
            max_delay: float = 10.0, sleep=time.sleep, rng=random.random) -> str | None:
    """Apply `change(tree_path) -> (paths, message) | None` on the tip of `branch`, commit
    once, push without force; on a lost race fetch and redo. Returns the pushed commit SHA,
    or None when the change was already in place (nothing committed)."""
    ident = _identity(tree)
    for attempt in range(attempts):
        if attempt:
            _fetch(tree, branch)
            tree.run("reset", "--quiet", "--hard", f"refs/remotes/origin/{branch}")
            tree.run("clean", "--quiet", "-fdx")
        result = change(tree.cwd)
        if result is None:
            return None
        paths, message = result
        tree.run("add", "--", *paths)
        if tree.run("diff", "--cached", "--quiet", check=False).returncode == 0:
            return None
        _with_message(tree, ident, ["commit", "--quiet", "--no-verify", "-F", "-"], message)
        sha = tree.out("rev-parse", "HEAD")
        if _push(tree, sha, branch, attempt, base_delay, max_delay, sleep, rng):
            return sha
    raise PushRaceLost(f"push to {branch} still rejected after {attempts} attempts (the branch keeps moving)")


def _with_message(tree: Git, ident: list[str], args: list[str], message: str) -> str:
    """Run a git command that reads the commit message on stdin; its output."""
    p = subprocess.run(["git", *ident, *args], cwd=tree.cwd, env=tree.env, input=message, capture_output=True,
                       text=True)
    if p.returncode != 0:
        raise GitError(f"git {args[0]} failed: {tree.redact(p.stderr.strip())}")
    return p.stdout.strip()


def _push(tree: Git, sha: str, branch: str, attempt: int, base_delay, max_delay, sleep, rng) -> bool:
    """Push `sha` to `branch` without force. True if it landed; False if the branch moved
    under us (after a backoff, so the caller can redo on the new tip); raises otherwise."""
    p = tree.run("push", "--porcelain", "origin", f"{sha}:refs/heads/{branch}", check=False)
    if p.returncode == 0:
        return True
    text = (p.stdout + p.stderr).lower()
    if remote_rule(p.stderr or "") or not any(s in text for s in REJECTED):  # a rule: no race to redo
        raise _classify(tree, p, f"push to {branch} failed")
    # Lost the race: exponential backoff with full jitter, then redo on the new tip.
    sleep(min(max_delay, base_delay * 2 ** attempt) * (0.5 + rng()))
    return False


def publish_branch(tree: Git, base: str, head: str, change, *, attempts: int = 10, base_delay: float = 0.1,
                   max_delay: float = 10.0, sleep=time.sleep, rng=random.random) -> tuple[str | None, bool]:
    """Like `publish`, but onto the review branch `head` (for a pull request into `base`).

    The change is applied on the tip of `base`; if `head` already exists (an open PR), the
    new commit gets its tip as a second parent, so the push is a fast-forward (no force)
    while the PR's diff against `base` stays exactly the new pin change. Returns
    (head commit, whether it is new), or (None, False) when `base` already has the change.
    """
    ident = _identity(tree)
    for attempt in range(attempts):
        _fetch(tree, base)
        p = tree.run("fetch", "--quiet", "--no-tags", "origin", f"+refs/heads/{head}:refs/remotes/origin/{head}",
                     check=False)
        pr_tip = tree.out("rev-parse", f"refs/remotes/origin/{head}") if p.returncode == 0 else None
        base_tip = tree.out("rev-parse", f"refs/remotes/origin/{base}")
        tree.run("reset", "--quiet", "--hard", base_tip)
        tree.run("clean", "--quiet", "-fdx")
        result = change(tree.cwd)
        if result is None:
            return None, False
        paths, message = result
        tree.run("add", "--", *paths)
        new_tree = tree.out("write-tree")
        if new_tree == tree.out("rev-parse", f"{base_tip}^{{tree}}"):
            return None, False
        if pr_tip and new_tree == tree.out("rev-parse", f"{pr_tip}^{{tree}}"):
            return pr_tip, False  # the review branch already proposes exactly this
        parents = ["-p", base_tip] + (["-p", pr_tip] if pr_tip else [])
        sha = _with_message(tree, ident, ["commit-tree", new_tree, *parents, "-F", "-"], message)
        if _push(tree, sha, head, attempt, base_delay, max_delay, sleep, rng):
            return sha, True
    raise PushRaceLost(f"push to {head} still rejected after {attempts} attempts")


def withdraw_branch(tree: Git, head: str, pushed: str) -> str | None:
    """Undo the push of `pushed` to the review branch `head` (its pull request could not be
    opened): delete the branch, or put back the tip it had (our commit's second parent) —
    only while it still points at `pushed` (a lease: someone else's newer push stays).
    -> "deleted" or "reset to its previous tip", or None when that failed."""
    parents = tree.out("rev-list", "--parents", "-n", "1", pushed).split()[1:]
    before = parents[1] if len(parents) > 1 else None
    dest = f"{before}:refs/heads/{head}" if before else f":refs/heads/{head}"
    p = tree.run("push", "--porcelain", f"--force-with-lease=refs/heads/{head}:{pushed}", "origin", dest, check=False)
    if p.returncode != 0:
        return None
    return "reset to its previous tip" if before else "deleted"
