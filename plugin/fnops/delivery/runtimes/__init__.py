"""Build contexts for function runtimes.

`python3.x`: fnops writes the Dockerfile and adds its function server plus the server's
pure-Python libraries (uvicorn, h11, click) at the exact versions `python/server.lock`
names: copied from this installation when it has those versions, else unpacked from the
locked wheels (hash-checked; fetched once into a cache). Nothing is resolved at build
time, so the image build needs the network only for the function's own requirements.txt.
`dockerfile`: the folder's own Dockerfile. `image`: nothing to build.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile

from ...errors import UsageError

HERE = os.path.dirname(os.path.abspath(__file__))
LOCK = os.path.join(HERE, "python", "server.lock")
SKIP = shutil.ignore_patterns("releases", ".git", "__pycache__", "*.pyc", ".fnops")


def default_base(runtime: str) -> str:
    return f"python:{runtime[len('python'):]}-slim"


def locked() -> list[tuple[str, str, str]]:
    """(name, version, sha256) for each library in server.lock."""
    out = []
    with open(LOCK, encoding="utf-8") as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if line:
                req, _, digest = line.partition(" --hash=sha256:")
                name, _, version = req.partition("==")
                out.append((name, version, digest.strip()))
    return out


def _installed_version(name: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _wheel_cache() -> str:
    base = os.environ.get("FNOPS_CACHE_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "fnops")
    return os.path.join(base, "wheels")


def _locked_wheel(name: str, version: str, digest: str) -> str:
    """The hash-checked wheel for name==version: from the cache, else downloaded once."""
    cache = _wheel_cache()
    prefix = f"{name.replace('-', '_')}-{version}-"
    found = [f for f in os.listdir(cache) if f.startswith(prefix) and f.endswith(".whl")] if os.path.isdir(cache) else []
    if not found:
        os.makedirs(cache, exist_ok=True)
        p = subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
                            "--require-hashes", "-d", cache, f"{name}=={version}", f"--hash=sha256:{digest}"],
                           capture_output=True, text=True)
        found = [f for f in os.listdir(cache) if f.startswith(prefix) and f.endswith(".whl")]
        if p.returncode != 0 or not found:
            raise UsageError(f"cannot vendor {name}=={version} (from {os.path.relpath(LOCK, HERE)}): not installed "
                             f"at that version and the wheel could not be fetched; `pip install {name}=={version}` "
                             "or put its wheel in $FNOPS_CACHE_DIR/wheels")
    path = os.path.join(cache, found[0])
    with open(path, "rb") as f:
        if hashlib.sha256(f.read()).hexdigest() != digest:
            raise UsageError(f"{path}: does not match the hash in server.lock; remove it and retry")
    return path


def _vendor(dst: str) -> None:
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.so")
    for name, version, digest in locked():
        spec = importlib.util.find_spec(name)
        if _installed_version(name) == version and spec is not None and spec.submodule_search_locations:
            shutil.copytree(list(spec.submodule_search_locations)[0], os.path.join(dst, name), ignore=ignore)
            continue
        with zipfile.ZipFile(_locked_wheel(name, version, digest)) as z:
            members = [m for m in z.namelist() if m.startswith(f"{name}/") and "__pycache__" not in m]
            z.extractall(dst, members)


def build_context(fn, base_image: str | None = None) -> tuple[str, str]:
    """-> (context dir, Dockerfile path). The caller removes the context dir."""
    if fn.runtime == "image":
        raise UsageError(f"{fn.name}: runtime 'image' has nothing to build")
    ctx = tempfile.mkdtemp(prefix=f"fnops-build-{fn.name}-")
    try:
        shutil.copytree(fn.folder, ctx, dirs_exist_ok=True, ignore=SKIP)
        if fn.runtime == "dockerfile":
            dockerfile = os.path.join(ctx, "Dockerfile")
            if not os.path.isfile(dockerfile):
                raise UsageError(f"{os.path.join(fn.folder, 'Dockerfile')}: runtime 'dockerfile' needs a Dockerfile")
            return ctx, dockerfile
        if os.path.exists(os.path.join(ctx, "Dockerfile")):
            os.rename(os.path.join(ctx, "Dockerfile"), os.path.join(ctx, "Dockerfile.user"))
        fnops_dir = os.path.join(ctx, ".fnops")
        os.makedirs(fnops_dir)
        shutil.copy(os.path.join(HERE, "python", "server.py"), fnops_dir)
        _vendor(os.path.join(fnops_dir, "vendor"))
        req = os.path.join(ctx, "requirements.txt")
        if not os.path.exists(req):
            with open(req, "w") as f:
                f.write("")
        with open(os.path.join(HERE, "python", "Dockerfile.tmpl")) as f:
            text = f.read().format(runtime=fn.runtime, base_image=base_image or default_base(fn.runtime),
                                   handler=fn.handler)
        dockerfile = os.path.join(ctx, "Dockerfile")
        with open(dockerfile, "w") as f:
            f.write(text)
        return ctx, dockerfile
    except BaseException:
        shutil.rmtree(ctx, ignore_errors=True)
        raise
