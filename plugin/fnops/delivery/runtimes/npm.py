"""What a node function's build installs: `npm ci` from the lockfile (spec/packagejson.py
checks package.json). A package.json without dependencies needs no install at all: the image
is built without running npm (no registry, no network).
"""

from __future__ import annotations

import os

from ...errors import SpecError
from ...spec.packagejson import LOCKFILES, check


def needs_install(folder: str, display: str | None = None) -> bool:
    """Whether npm must install anything for this folder; SpecError (exit 2) for a
    package.json that is not JSON, not an object, or declares dependencies without a lockfile."""
    needed, problems = check(folder, display)
    if problems:
        raise SpecError(problems)
    return needed


# The Dockerfile step that installs a node function's dependencies (runtimes/node/Dockerfile.tmpl).
# In the image, on its base's npm, as python's requirements are installed with the base's pip:
# the dependency tree is then the image platform's (a package with a native part resolves
# for linux/amd64 or arm64 as the image, not as the runner), and what npm fetches is checked
# by npm against the lockfile's integrity in the very step that installs it.
INSTALL = """\
# The function's dependencies: a layer of their own, cached until package.json or the lock change.
# `npm ci` installs exactly what the lockfile pins and checks every tarball's integrity; no install
# scripts (code run at build time, writing what it likes), no devDependencies, no audit or fund
# requests. npm's cache, logs and temporary files go to a scratch folder removed in the same step,
# so none of them (random names, times) is in the layer; buildah's --timestamp (buildx's
# rewrite-timestamp) sets every file time to the function's commit time.
COPY package.json {lockfile} /app/
RUN mkdir -p /opt/fnops/.npm-tmp && cd /app && \\
    TMPDIR=/opt/fnops/.npm-tmp npm_config_cache=/opt/fnops/.npm-tmp/cache npm_config_update_notifier=false \\
      npm ci --ignore-scripts --omit=dev --no-audit --no-fund --loglevel=warn && \\
    rm -rf /opt/fnops/.npm-tmp
"""


def install_step(folder: str, display: str | None = None) -> str:
    """The Dockerfile lines that install the folder's dependencies; '' when there are none."""
    if not needs_install(folder, display):
        return ""
    lockfile = next(lock for lock in LOCKFILES if os.path.isfile(os.path.join(folder, lock)))
    return INSTALL.format(lockfile=lockfile)
