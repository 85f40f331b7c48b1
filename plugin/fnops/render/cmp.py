"""The Argo CD CMP generate command (`fnops render`), shared by the fast entry point and
the click command. Imports only what rendering needs."""

from __future__ import annotations

import os
import sys

from ..errors import FnopsError, Problem, SpecError, UsageError

MAX_OUTPUT_BYTES = 1 << 20  # Argo CD keeps manifests in Redis and the sidecar has little memory


def resolve_env(env: str | None, environ=os.environ) -> str:
    env = env or environ.get("ARGOCD_ENV_FNOPS_ENV") or None
    if not env:
        raise UsageError("no environment: pass --env ENV or set FNOPS_ENV in the Application's plugin env "
                         "(ARGOCD_ENV_FNOPS_ENV)")
    return env


def render_text(path: str, env: str | None, environ=os.environ) -> str:
    from . import RenderOptions, dump, render_objects
    from ..spec import load_function, load_release_for

    env = resolve_env(env, environ)
    opts = RenderOptions.from_environ(environ)
    fn = load_function(path, env)
    release = load_release_for(fn)
    objs = render_objects(fn, release, opts)
    if not objs:  # never an empty success: with prune on, Argo CD would delete everything
        raise FnopsError(f"{path}: rendering produced no objects")
    text = dump(objs)
    if len(text) > MAX_OUTPUT_BYTES:
        raise SpecError([Problem(os.path.join(os.path.normpath(path), "function.yaml"), 1, 1,
                                 f"renders to more than {MAX_OUTPUT_BYTES // 1024} KiB of manifests; "
                                 "trim env, triggers or cron data")])
    return text


def run(path: str, env: str | None, out=None, err=None) -> int:
    """Render to `out` in one write (no partial stream on failure); errors to `err`."""
    out = out or sys.stdout
    err = err or sys.stderr
    try:
        text = render_text(path, env)
    except FnopsError as e:
        print(e.format(), file=err)
        return e.exit_code
    out.write(text)
    out.flush()
    return 0
