"""Real Git: a bare 'origin' seeded with the example functions, and clones of it."""

from __future__ import annotations

import os
import shutil
import subprocess

from conftest import EXAMPLES


def git(cwd, *args, check=True):
    p = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True,
                       env={**os.environ, "GIT_AUTHOR_NAME": "dev", "GIT_AUTHOR_EMAIL": "dev@example.com",
                            "GIT_COMMITTER_NAME": "dev", "GIT_COMMITTER_EMAIL": "dev@example.com"})
    if check and p.returncode:
        raise AssertionError(f"git {' '.join(args)}: {p.stderr}")
    return p.stdout.strip()


def make_origin(tmp_path) -> str:
    bare = str(tmp_path / "origin.git")
    git(tmp_path, "init", "--quiet", "--bare", "--initial-branch=main", bare)
    seed = tmp_path / "seed"
    git(tmp_path, "init", "--quiet", "--initial-branch=main", str(seed))
    shutil.copytree(EXAMPLES, seed / "functions")
    git(seed, "add", "-A")
    git(seed, "commit", "--quiet", "-m", "functions")
    git(seed, "remote", "add", "origin", bare)
    git(seed, "push", "--quiet", "origin", "main")
    return bare


def clone(bare: str, dest) -> str:
    git(os.path.dirname(str(dest)), "clone", "--quiet", bare, str(dest))
    return str(dest)


def show(bare: str, path: str, rev: str = "main") -> str:
    return git(bare, "show", f"{rev}:{path}")
