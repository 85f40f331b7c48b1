"""Real Git: a bare 'origin' seeded with the example functions, and clones of it."""

from __future__ import annotations

import glob
import os
import re
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
    # The examples' pins name commits of another history; here they record the seed
    # commit, so the ledger (pins' source commits) is real history as in a team's repo.
    first = git(seed, "rev-parse", "HEAD")
    for pin in glob.glob(str(seed / "functions" / "*" / "releases" / "*.yaml")):
        with open(pin, encoding="utf-8") as f:
            text = re.sub(r"commit: [0-9a-f]{40}", f"commit: {first}", f.read())
        with open(pin, "w", encoding="utf-8") as f:
            f.write(text)
    git(seed, "commit", "--quiet", "-am", "pins record this history")
    git(seed, "remote", "add", "origin", bare)
    git(seed, "push", "--quiet", "origin", "main")
    return bare


def clone(bare: str, dest) -> str:
    git(os.path.dirname(str(dest)), "clone", "--quiet", bare, str(dest))
    return str(dest)


def show(bare: str, path: str, rev: str = "main") -> str:
    return git(bare, "show", f"{rev}:{path}")


def head(cwd) -> str:
    return git(cwd, "rev-parse", "HEAD")


def new_commit(cwd, path="functions/hello/handler.py", line="# change\n", push=False) -> str:
    """A source change in a clone (optionally pushed); -> its SHA."""
    with open(os.path.join(str(cwd), path), "a", encoding="utf-8") as f:
        f.write(line)
    git(cwd, "commit", "--quiet", "-am", f"change {path}")
    if push:
        git(cwd, "push", "--quiet", "origin", "HEAD:main")
    return head(cwd)
