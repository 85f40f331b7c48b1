"""Build contexts for function runtimes.

`python3.x`: fnops writes the Dockerfile and adds its function server plus the server's
pure-Python libraries (uvicorn, h11, click) copied from this installation, so the image
build needs the network only for the function's own requirements.txt.
`dockerfile`: the folder's own Dockerfile. `image`: nothing to build.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile

from ...errors import UsageError

HERE = os.path.dirname(os.path.abspath(__file__))
VENDORED = ("uvicorn", "h11", "click")
SKIP = shutil.ignore_patterns("releases", ".git", "__pycache__", "*.pyc", ".fnops")


def default_base(runtime: str) -> str:
    return f"python:{runtime[len('python'):]}-slim"


def _vendor(dst: str) -> None:
    for mod in VENDORED:
        spec = importlib.util.find_spec(mod)
        if spec is None or not spec.submodule_search_locations:
            raise UsageError(f"cannot vendor '{mod}' into the image: install fnops with its dependencies")
        shutil.copytree(list(spec.submodule_search_locations)[0], os.path.join(dst, mod),
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.so"))


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
