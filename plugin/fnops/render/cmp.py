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
    """The manifests. What they can grow to is bounded before anything is built (spec.limits
    bound every list the renderer repeats), so this check on the text is the last word on
    size, not the only guard of memory."""
    from . import RenderOptions, dump, render_objects
    from ..spec import load_function, load_release_for

    env = resolve_env(env, environ)
    opts = RenderOptions.from_environ(environ)
    fn = load_function(path, env, opts.platform)
    release = load_release_for(fn)
    objs = render_objects(fn, release, opts)
    if not objs:  # never an empty success: with prune on, Argo CD would delete everything
        raise FnopsError(f"{path}: rendering produced no objects")
    text = dump(objs)
    if len(text) > MAX_OUTPUT_BYTES:
        raise SpecError([_too_big(path, env)])
    return text


PREVIEW_ANNOTATION = "fnops.dev/preview"
PREVIEW_REGISTRY = "preview.invalid"  # RFC 2606: never resolves, so a placeholder can never be pulled


def preview_text(path: str, env: str | None, image: str | None = None, environ=os.environ) -> str:
    """`fnops render --preview`: the manifests of a function that has no pin yet, for a
    person to read. The image is `image` (digest-pinned) or a placeholder under
    preview.invalid; the pin is never read. Marked in a header comment and an annotation
    on every object, and refused where Argo CD runs (ARGOCD_APP_NAME is set for a CMP), so
    a preview cannot reach a cluster through the CMP by accident."""
    from . import RenderOptions, dump, render_objects
    from ..spec import Release, load_function
    from ..types import PinnedImage

    if environ.get("ARGOCD_APP_NAME"):
        raise UsageError("--preview is for a person at a terminal; inside Argo CD, render releases/<env>.yaml only")
    env = resolve_env(env, environ)
    opts = RenderOptions.from_environ(environ)
    fn = load_function(path, env, opts.platform)
    if image:
        try:
            pinned = PinnedImage.parse(image)
        except ValueError as e:
            raise UsageError(f"--image: {e}; leave --image out for a placeholder") from None
    else:
        repo = fn.image or f"{PREVIEW_REGISTRY}/{fn.name}"
        pinned = PinnedImage.parse(f"{repo}:preview@sha256:{'0' * 64}")
    release = Release(path=os.path.join(path, "releases", f"{env}.yaml"), image=pinned)
    objs = render_objects(fn, release, opts)
    for obj in objs:
        obj.setdefault("metadata", {}).setdefault("annotations", {})[PREVIEW_ANNOTATION] = "true"
    return (f"# fnops render --preview: NOT A RELEASE. Image {pinned} is "
            + ("given by --image" if image else "a placeholder that cannot be pulled")
            + f"; Argo CD renders only the pin in releases/{env}.yaml.\n" + dump(objs))


def _too_big(path: str, env: str) -> Problem:
    from ..spec import largest_field

    where = largest_field(path, env)
    field = f"{where.message}: " if where.message else ""
    return where._replace(message=f"{field}the manifests would be larger than {MAX_OUTPUT_BYTES // 1024} KiB "
                                  f"(the limit for one app); this is the largest field, trim it")


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
