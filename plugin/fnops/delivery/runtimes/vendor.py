"""The function server's libraries, exactly as `python/server.lock` names them.

The lock pins versions and wheel hashes; the wheels are fetched once into a cache
($FNOPS_CACHE_DIR/wheels, default ~/.cache/fnops/wheels) through pip's own hash checking
(`--require-hashes`, binary only, no dependencies), then unpacked from there. What is
installed beside fnops plays no part, so any runner vendors the same bytes, and a filled
cache builds offline. `.ci/relock` regenerates the lock.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from collections import namedtuple

from ...errors import TemporaryError, UsageError
from ...escape import shown

HERE = os.path.dirname(os.path.abspath(__file__))
LOCK = os.path.join(HERE, "python", "server.lock")

Locked = namedtuple("Locked", "name version hashes")


def _canonical(name: str) -> str:
    return name.lower().replace("-", "_").replace(".", "_")


def locked(path: str = LOCK) -> list[Locked]:
    """The `name==version --hash=sha256:…` entries of a pip-compile lock."""
    with open(path, encoding="utf-8") as f:
        text = f.read().replace("\\\n", " ")
    out = []
    for line in text.splitlines():
        words = line.split("#", 1)[0].split()
        if not words or words[0].startswith("-"):
            continue
        name, sep, version = words[0].partition("==")
        hashes = frozenset(w.split(":", 1)[1] for w in words[1:] if w.startswith("--hash=sha256:"))
        if not sep or not hashes:
            raise UsageError(f"{path}: '{shown(words[0])}' is not pinned with a hash (regenerate with .ci/relock)")
        out.append(Locked(name, version, hashes))
    return out


def cache_dir() -> str:
    base = os.environ.get("FNOPS_CACHE_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "fnops")
    return os.path.join(base, "wheels")


def _sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _cached(lib: Locked, cache: str) -> str | None:
    """A wheel for lib in the cache whose hash the lock names; other files are ignored."""
    prefix = f"{_canonical(lib.name)}-{lib.version}-"
    if not os.path.isdir(cache):
        return None
    for f in sorted(os.listdir(cache)):
        if _canonical(f).startswith(_canonical(prefix)) and f.endswith(".whl"):
            path = os.path.join(cache, f)
            if _sha256(path) in lib.hashes:
                return path
    return None


def _pip_reason(stderr: str) -> str:
    """pip's own reason, one line: its ERROR lines, else its last line."""
    lines = [x.strip() for x in stderr.splitlines() if x.strip()]
    errors = [x[len("ERROR:"):].strip() for x in lines if x.startswith("ERROR:")]
    return shown(" ".join(errors or lines[-1:]) or "no output", 300)


def _fetch(missing: list[Locked], cache: str) -> None:
    os.makedirs(cache, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", suffix=".txt", prefix="fnops-lock-", delete=False) as req:
        for lib in missing:
            req.write(f"{lib.name}=={lib.version} " + " ".join(f"--hash=sha256:{h}" for h in sorted(lib.hashes)) + "\n")
    try:
        p = subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
                            "--no-deps", "--only-binary=:all:", "--require-hashes", "--dest", cache, "-r", req.name],
                           capture_output=True, text=True)
    finally:
        os.unlink(req.name)
    if p.returncode != 0:
        names = ", ".join(f"{lib.name}=={lib.version}" for lib in missing)
        raise TemporaryError(f"cannot fetch the function server's wheels ({names}, from {os.path.relpath(LOCK, HERE)}) "
                             f"into {cache}: pip: {_pip_reason(p.stderr)}")


def wheels(path: str = LOCK) -> list[str]:
    """The locked wheels' paths, hash-checked; fetched into the cache when missing."""
    cache = cache_dir()
    libs = locked(path)
    missing = [lib for lib in libs if _cached(lib, cache) is None]
    if missing:
        _fetch(missing, cache)
    out = []
    for lib in libs:
        found = _cached(lib, cache)
        if found is None:
            raise TemporaryError(f"pip fetched no wheel of {lib.name}=={lib.version} matching server.lock into {cache}")
        if not found.endswith("-none-any.whl"):
            raise UsageError(f"{found}: the function server's libraries must be pure Python (py3-none-any wheels): "
                             "the image's platform is not this machine's")
        out.append(found)
    return out


def vendor(dst: str) -> None:
    """Unpack every locked wheel's importable files into dst (no metadata, no bytecode)."""
    for wheel in wheels():
        with zipfile.ZipFile(wheel) as z:
            members = [m for m in z.namelist()
                       if not m.split("/", 1)[0].endswith((".dist-info", ".data")) and "__pycache__" not in m
                       and not m.endswith(".pyc") and not m.startswith("/") and ".." not in m.split("/")]
            z.extractall(dst, members)

