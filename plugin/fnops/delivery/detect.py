"""Which functions exist, and which changed between two commits (`ship --since`)."""

from __future__ import annotations

import os
import subprocess

from ..errors import UsageError


def repo_root(path: str = ".") -> str:
    p = subprocess.run(["git", "rev-parse", "--show-toplevel"], cwd=path, capture_output=True, text=True)
    if p.returncode != 0:
        raise UsageError(f"{os.path.abspath(path)} is not inside a Git repository")
    return p.stdout.strip()


def all_functions(root: str, functions_dir: str) -> list[str]:
    base = os.path.join(root, functions_dir)
    if not os.path.isdir(base):
        raise UsageError(f"{functions_dir}: no such folder (set --functions-dir)")
    return sorted(d for d in os.listdir(base) if os.path.isfile(os.path.join(base, d, "function.yaml")))


def changed_functions(history, functions_dir: str, since: str, head: str) -> list[str]:
    """Functions with a change outside releases/ between `since` and `head`."""
    root = history.root
    if since.strip("0") == "":  # a new branch: GitHub sends before=000…0
        return all_functions(root, functions_dir)
    p = subprocess.run(["git", "rev-parse", "--verify", "--quiet", f"{since}^{{commit}}"], cwd=root,
                       capture_output=True, text=True)
    if p.returncode != 0 and not history.has(since):
        raise UsageError(f"--since {since}: no such commit in this clone (fetch more history, e.g. fetch-depth: 0)")
    sha = p.stdout.strip() or since
    names = history.changed_folders(sha, head, functions_dir)
    if names is None:
        raise UsageError(f"cannot diff {since}..{head[:7]} in this clone")
    return sorted(names & set(all_functions(root, functions_dir)))  # a deleted function has nothing to ship
