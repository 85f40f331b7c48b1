"""Which functions need shipping: every function folder, or those changed between two commits."""

from __future__ import annotations

import os
import subprocess

from ..errors import UsageError


def _git(root: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True)


def repo_root(path: str = ".") -> str:
    p = _git(path, "rev-parse", "--show-toplevel")
    if p.returncode != 0:
        raise UsageError(f"{os.path.abspath(path)} is not inside a Git repository")
    return p.stdout.strip()


def all_functions(root: str, functions_dir: str) -> list[str]:
    base = os.path.join(root, functions_dir)
    if not os.path.isdir(base):
        raise UsageError(f"{functions_dir}: no such folder (set --functions-dir)")
    return sorted(d for d in os.listdir(base) if os.path.isfile(os.path.join(base, d, "function.yaml")))


def changed_functions(root: str, functions_dir: str, since: str) -> list[str]:
    """Functions with a change outside releases/ between `since` and HEAD."""
    if since.strip("0") == "":  # a new branch: GitHub sends before=000…0
        return all_functions(root, functions_dir)
    if _git(root, "rev-parse", "--verify", "--quiet", f"{since}^{{commit}}").returncode != 0:
        raise UsageError(f"--since {since}: no such commit in this clone (fetch more history, e.g. fetch-depth: 0)")
    p = _git(root, "diff", "--name-only", "--no-renames", f"{since}", "HEAD", "--", functions_dir)
    if p.returncode != 0:
        raise UsageError(f"cannot diff {since}..HEAD: {p.stderr.strip()}")
    prefix = functions_dir.rstrip("/") + "/"
    names = set()
    for path in p.stdout.splitlines():
        parts = path[len(prefix):].split("/")
        if path.startswith(prefix) and len(parts) > 1 and parts[1] != "releases":
            names.add(parts[0])
    present = set(all_functions(root, functions_dir))
    return sorted(names & present)  # a deleted function has nothing to ship
