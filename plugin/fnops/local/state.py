"""Which functions `fnops run` is serving, for `fnops invoke NAME` to find.

Each `fnops run` keeps one small JSON file (name, folder, pid, port, url, state) in a
folder of this user's: $FNOPS_RUN_DIR, else $XDG_RUNTIME_DIR/fnops, else
<tmp>/fnops-<uid> (made 0700 and checked to be ours, not a link someone planted). Not in
the function folder: nothing appears in the user's tree, and the build context (a copy
of the folder) stays what is committed. A file whose pid is gone is stale and ignored.
"""

from __future__ import annotations

import json
import os
import stat
import tempfile
import time

from ..errors import FnopsError


def run_dir() -> str:
    explicit = os.environ.get("FNOPS_RUN_DIR")
    if explicit:
        os.makedirs(explicit, mode=0o700, exist_ok=True)
        return explicit
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    base = os.path.join(xdg, "fnops") if xdg and os.path.isdir(xdg) else \
        os.path.join(tempfile.gettempdir(), f"fnops-{os.getuid()}")
    try:
        os.mkdir(base, 0o700)
    except FileExistsError:
        pass
    st = os.lstat(base)
    # In a shared /tmp another user could have made the folder first (or a link to theirs).
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid() or st.st_mode & 0o077:
        raise FnopsError(f"{base} is not a private folder of this user's; set FNOPS_RUN_DIR to one")
    return base


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Registration:
    """This `fnops run`'s entry: written on every change of state, removed on exit."""

    def __init__(self, name: str, folder: str, env: str | None, host: str):
        self.path = os.path.join(run_dir(), f"{name}-{os.getpid()}.json")
        self.data = {"name": name, "folder": os.path.abspath(folder), "environment": env, "pid": os.getpid(),
                     "host": host, "port": None, "url": None, "state": "starting", "reason": None,
                     "started": time.time()}

    def update(self, **kw) -> None:
        self.data.update(kw)
        if self.data["port"] is not None:
            host = self.data["host"]
            shown = "127.0.0.1" if host in ("0.0.0.0", "", "::") else (f"[{host}]" if ":" in host else host)
            self.data["url"] = f"http://{shown}:{self.data['port']}/"
        tmp = f"{self.path}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(self.data, f)
        os.replace(tmp, self.path)

    def remove(self) -> None:
        for p in (self.path, f"{self.path}.tmp"):
            try:
                os.unlink(p)
            except FileNotFoundError:
                pass


def served() -> list[dict]:
    """Every function a live `fnops run` of this user's serves (stale entries are removed)."""
    try:
        folder = run_dir()
    except (OSError, FnopsError):
        return []
    out = []
    for name in sorted(os.listdir(folder)):
        if not name.endswith(".json"):
            continue
        path = os.path.join(folder, name)
        try:
            with open(path, encoding="utf-8") as f:
                data = json.load(f)
            pid = int(data["pid"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if not alive(pid):
            try:
                os.unlink(path)
            except OSError:
                pass
            continue
        out.append(data)
    return out
