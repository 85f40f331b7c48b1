"""The build context: a copy of the function folder that holds the folder's own files and
nothing of the machine it is built on.

A folder comes from a push anyone with write access made. A committed symlink
(`environ -> /proc/self/environ`, `auth.json -> ~/.docker/config.json`) would be followed
by a plain copy and end up in a pushed image; a FIFO would hang the copy. So the copy
walks the folder without following links: regular files and directories are copied, a link
whose target stays inside the folder is kept as a link, anything else is refused by name
before a single file is written.
"""

from __future__ import annotations

import fnmatch
import os
import shutil
import stat

from ...errors import Problem, SpecError

# Never part of an image: pins (they change after every build), Git's and Python's own
# files, and fnops' generated folder (the context adds its own).
SKIP = ("releases", ".git", "__pycache__", "*.pyc", ".fnops")


def _skipped(name: str) -> bool:
    return any(fnmatch.fnmatch(name, p) for p in SKIP)


def _inside(root: str, path: str) -> bool:
    return path == root or path.startswith(root + os.sep)


def _plan(folder: str, display: str) -> list[tuple[str, str, str]]:
    """-> [(kind, relative path, link target)] for everything to copy; SpecError naming
    every entry that may not be copied."""
    root = os.path.realpath(folder)
    out, bad = [], []
    stack = [""]
    while stack:
        rel_dir = stack.pop()
        with os.scandir(os.path.join(root, rel_dir)) as it:
            entries = sorted(it, key=lambda e: e.name)
        for e in entries:
            if _skipped(e.name):
                continue
            rel = os.path.join(rel_dir, e.name)
            shown = os.path.join(display, rel)
            st = e.stat(follow_symlinks=False)
            if stat.S_ISLNK(st.st_mode):
                target = os.readlink(e.path)
                resolved = os.path.realpath(os.path.join(root, rel_dir, target))
                if os.path.isabs(target) or not _inside(root, resolved):
                    bad.append(Problem(shown, 1, 1, f"symlink to {target!r} leaves the function folder; the build "
                                                    "context holds only the folder's own files (commit the file itself)"))
                else:
                    out.append(("link", rel, target))
            elif stat.S_ISDIR(st.st_mode):
                out.append(("dir", rel, ""))
                stack.append(rel)
            elif stat.S_ISREG(st.st_mode):
                out.append(("file", rel, ""))
            else:
                bad.append(Problem(shown, 1, 1, "not a regular file or directory (a FIFO, socket or device); the build "
                                                "context holds only regular files, directories and links inside the folder"))
    if bad:
        raise SpecError(bad)
    return out


def copy_folder(folder: str, dst: str, display: str | None = None) -> None:
    """Copy `folder` into the existing directory `dst`, refusing (SpecError, exit 2) what
    may not be in an image. Nothing is copied when anything is refused."""
    plan = _plan(folder, display or folder)
    root = os.path.realpath(folder)
    for kind, rel, target in sorted(plan, key=lambda p: p[1].count(os.sep)):
        out = os.path.join(dst, rel)
        if kind == "dir":
            os.makedirs(out, exist_ok=True)
        elif kind == "link":
            os.symlink(target, out)
        else:
            # O_NOFOLLOW: a file swapped for a link after the walk is refused, not followed.
            fd = os.open(os.path.join(root, rel), os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
            try:
                if not stat.S_ISREG(os.fstat(fd).st_mode):
                    raise SpecError([Problem(os.path.join(display or folder, rel), 1, 1, "changed while copying")])
                with os.fdopen(fd, "rb", closefd=False) as src, open(out, "wb") as f:
                    shutil.copyfileobj(src, f)
                os.chmod(out, os.fstat(fd).st_mode & 0o755)
            finally:
                os.close(fd)
