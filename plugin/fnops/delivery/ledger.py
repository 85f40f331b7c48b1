"""Git is the ledger: what each pin records, compared with what the folder holds now.

A function needs shipping to ENV when its folder (outside `releases/`) differs between
the source commit its pin records and the commit being shipped — or when it has no pin,
or a pin this history cannot vouch for. Pins are read from the tip of the target branch
(what Git records), never from one push's diff, so a failed run's work is picked up by
the next run and a re-run of an unchanged tree builds nothing.
"""

from __future__ import annotations

import os
import subprocess
from collections import namedtuple

from ..errors import SpecError
from ..types import GitSha

# reason: unpinned | changed | stale | since | forced
PlanItem = namedtuple("PlanItem", "function environment reason source_commit pinned_commit")
# Why a function is left out: up-to-date | pinned-newer
Skipped = namedtuple("Skipped", "function environment why pinned_commit")


class History:
    """Questions about commits, answered by a local clone of the *source* repository."""

    def __init__(self, root: str, gitops_url: str | None = None):
        """`gitops_url`: pins go to that other repository, so GITOPS_TOKEN is its token
        and never sent to this clone's origin."""
        self.root = root
        self.gitops_url = gitops_url
        self._unshallowed = False
        # A plan or a status asks about the same commits over and over (head, for every pin):
        # commits this clone has, and diffs already taken, are answered from memory.
        self._known: set[str] = set()
        self._diffs: dict = {}

    def _git(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["git", *args], cwd=self.root, capture_output=True, text=True)

    def has(self, sha: str) -> bool:
        if sha in self._known:
            return True
        if self._git("cat-file", "-e", f"{sha}^{{commit}}").returncode != 0:
            self._deepen()
            if self._git("cat-file", "-e", f"{sha}^{{commit}}").returncode != 0:
                return False
        self._known.add(sha)
        return True

    def _deepen(self) -> None:
        """A shallow CI checkout (fetch-depth: 1) knows no older commit: fetch the history once."""
        if self._unshallowed:
            return
        self._unshallowed = True
        if self._git("rev-parse", "--is-shallow-repository").stdout.strip() == "true":
            # With the token, through git's environment, as pins are pushed: a checkout with
            # persist-credentials: false has none, and a private origin refuses an anonymous fetch.
            from . import gitops
            from .origin import github_token_for, remote_url, token_from

            url = remote_url(self.root)
            token = github_token_for(url or "") if self.gitops_url else token_from("GITOPS_TOKEN", None, self.root)
            git = gitops.Git(self.root, token, url)
            p = git.run("fetch", "--quiet", "--no-tags", "--unshallow", "origin", check=False)
            if p.returncode != 0:  # before anything is built: without history every pin looks stale
                raise gitops._classify(git, p, "this clone is shallow and fetching its history failed (use "
                                               "fetch-depth: 0 in actions/checkout, or pass the token)")

    def is_ancestor(self, old: str, new: str) -> bool | None:
        """True: `old` is `new` or comes before it. False: it does not. None: unknown commit."""
        if old == new:
            return True
        if not (self.has(old) and self.has(new)):
            return None
        return self._git("merge-base", "--is-ancestor", old, new).returncode == 0

    def commit_time(self, sha: str) -> int | None:
        p = self._git("show", "-s", "--format=%ct", sha)
        return int(p.stdout.strip()) if p.returncode == 0 and p.stdout.strip().isdigit() else None

    def content_time(self, head: str, folder: str) -> int | None:
        """The time of the last commit up to `head` that changed `folder` (repository-relative)
        outside its releases/: the same folder content has the same time at any later commit,
        so it can stamp a reproducible image. A shallow clone would answer with its boundary
        commit, so the history is fetched first."""
        self._deepen()  # once per History; a no-op for a full clone
        folder = folder.strip("/")
        p = self._git("log", "-1", "--format=%ct", head, "--", f":(top){folder}", f":(top,exclude){folder}/releases")
        t = p.stdout.strip()
        return int(t) if p.returncode == 0 and t.isdigit() else None

    def changed_folders(self, old: str, new: str, functions_dir: str) -> set[str] | None:
        """Function names with a change outside releases/ between two commits (None: unknown)."""
        key = (old, new, functions_dir)
        if key not in self._diffs:
            self._diffs[key] = self._changed_folders(old, new, functions_dir)
        return self._diffs[key]

    def _changed_folders(self, old: str, new: str, functions_dir: str) -> set[str] | None:
        if not (self.has(old) and self.has(new)):
            return None
        p = self._git("diff", "--name-only", "--no-renames", old, new, "--", functions_dir)
        if p.returncode != 0:
            return None
        prefix = functions_dir.rstrip("/") + "/"
        names = set()
        for path in p.stdout.splitlines():
            parts = path[len(prefix):].split("/") if path.startswith(prefix) else []
            if len(parts) > 1 and parts[1] != "releases":
                names.add(parts[0])
        return names


def pinned_commit(tree: str, functions_dir: str, name: str, env: str) -> tuple[bool, str | None]:
    """(pinned?, source commit) of releases/<env>.yaml in a checked-out tree. A pin that
    records no valid commit counts as pinned with commit None (stale: nothing vouches for it)."""
    from .. import yamldoc

    path = os.path.join(tree, functions_dir, name, "releases", f"{env}.yaml")
    if not os.path.isfile(path):
        return False, None
    try:
        doc = yamldoc.load(path, os.path.join(functions_dir, name, "releases", f"{env}.yaml"),
                           root=os.path.join(tree, functions_dir, name))
    except SpecError:
        return True, None
    src = doc.value.get("source") if isinstance(doc.value, dict) else None
    commit = src.get("commit") if isinstance(src, dict) else None
    try:
        return True, GitSha(commit) if isinstance(commit, str) else None
    except ValueError:
        return True, None


def plan(history: History, tip_tree: str, functions_dir: str, names: list[str], env: str, head: str):
    """-> (list[PlanItem], list[Skipped]) for shipping `head` to `env`."""
    items, skipped = [], []
    by_commit: dict = {}
    for name in names:
        pinned, commit = pinned_commit(tip_tree, functions_dir, name, env)
        if not pinned:
            items.append(PlanItem(name, env, "unpinned", head, None))
        elif commit is None:
            items.append(PlanItem(name, env, "stale", head, None))
        else:
            by_commit.setdefault(commit, []).append(name)
    for commit, group in sorted(by_commit.items()):
        if commit == head:
            skipped += [Skipped(n, env, "up-to-date", commit) for n in group]
            continue
        order = history.is_ancestor(commit, head)
        if order is None:  # recorded commit unknown to this history: cannot vouch for it
            items += [PlanItem(n, env, "stale", head, commit) for n in group]
            continue
        if not order and history.is_ancestor(head, commit):
            skipped += [Skipped(n, env, "pinned-newer", commit) for n in group]
            continue
        changed = history.changed_folders(commit, head, functions_dir)
        for n in group:
            if changed is None or n in changed or not order:
                items.append(PlanItem(n, env, "changed" if order else "stale", head, commit))
            else:
                skipped.append(Skipped(n, env, "up-to-date", commit))
    items.sort(key=lambda i: i.function)
    skipped.sort(key=lambda s: s.function)
    return items, skipped
