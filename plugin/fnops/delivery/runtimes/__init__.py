"""Build contexts for function runtimes.

`python3.x`: fnops writes the Dockerfile and adds its function server plus the server's
pure-Python libraries (uvicorn, h11, click) from the wheels `python/server.lock` pins with
hashes (`vendor`). `nodeNN`: its server (Node's http module only) and the folder, with
dependencies installed by `npm ci` from the lockfile (`npm`). `dockerfile`: the folder's own
Dockerfile. `image`: nothing to build.
Every context is a checked copy of the folder (`context`): no link out of it, no device.
"""

from __future__ import annotations

import os
import shutil
import tempfile

from ...errors import UsageError
from . import npm, vendor
from .context import copy_folder

HERE = os.path.dirname(os.path.abspath(__file__))


def default_base(runtime: str) -> str:
    if runtime.startswith("node"):
        return f"node:{runtime[len('node'):]}-slim"
    return f"python:{runtime[len('python'):]}-slim"


def build_context(fn, base_image: str | None = None) -> tuple[str, str]:
    """-> (context dir, Dockerfile path). The caller removes the context dir."""
    if fn.runtime == "image":
        raise UsageError(f"{fn.name}: runtime 'image' has nothing to build")
    ctx = tempfile.mkdtemp(prefix=f"fnops-build-{fn.name}-")
    try:
        copy_folder(fn.folder, ctx)
        if fn.runtime == "dockerfile":
            dockerfile = os.path.join(ctx, "Dockerfile")
            if not os.path.isfile(dockerfile):
                raise UsageError(f"{os.path.join(fn.folder, 'Dockerfile')}: runtime 'dockerfile' needs a Dockerfile")
            return ctx, dockerfile
        if os.path.exists(os.path.join(ctx, "Dockerfile")):
            os.rename(os.path.join(ctx, "Dockerfile"), os.path.join(ctx, "Dockerfile.user"))
        fnops_dir = os.path.join(ctx, ".fnops")
        os.makedirs(fnops_dir)
        if fn.runtime.startswith("node"):
            return _node_context(fn, ctx, fnops_dir, base_image)
        shutil.copy(os.path.join(HERE, "python", "server.py"), fnops_dir)
        vendor.vendor(os.path.join(fnops_dir, "vendor"))
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


def _node_context(fn, ctx: str, fnops_dir: str, base_image: str | None) -> tuple[str, str]:
    """nodeNN: the server (Node's http module only) and the folder; dependencies by `npm ci`."""
    # A developer's node_modules (from `npm ci` for `fnops run`) is this machine's: the image
    # installs its own from the lockfile, so the digest does not depend on who built it.
    shutil.rmtree(os.path.join(ctx, "node_modules"), ignore_errors=True)
    # A folder's .npmrc holds registry tokens more often than not: never a layer of the image
    # (npm ci reads the public registry or the lockfile's URLs; a private one needs a mirror).
    if os.path.lexists(os.path.join(ctx, ".npmrc")):
        os.remove(os.path.join(ctx, ".npmrc"))
    shutil.copy(os.path.join(HERE, "node", "server.js"), fnops_dir)
    with open(os.path.join(HERE, "node", "Dockerfile.tmpl")) as f:
        text = f.read().format(runtime=fn.runtime, base_image=base_image or default_base(fn.runtime),
                               handler=fn.handler, dependencies=npm.install_step(fn.folder))
    dockerfile = os.path.join(ctx, "Dockerfile")
    with open(dockerfile, "w") as f:
        f.write(text)
    return ctx, dockerfile
