"""releases/<env>.yaml: the digest pin fnops writes and render/bridge read."""

from __future__ import annotations

import os

from .. import yamldoc
from ..errors import SpecError
from ..types import GitSha, PinnedImage
from . import units
from .units import shown
from .check import Checker
from .function import REVISION_HASH_LEN
from .limits import MAX_RELEASE_BYTES
from .model import Release

RELEASE_KEYS = ("image", "source", "releasedAt", "revision", "previous", "rollbackOf", "canary", "promoted")
SOURCE_KEYS = ("repo", "commit", "ref", "run", "time")
PREVIOUS_KEYS = ("image", "revision", "source")
CANARY_KEYS = ("step", "at")


def release_path(folder: str, env: str) -> str:
    return os.path.join(folder, "releases", f"{env}.yaml")


def load_release(folder: str, env: str, fn_name: str, repository: str | None, display: str) -> Release:
    """Load and check the pin. `repository` is the function's own image repository, if set."""
    doc = yamldoc.load(release_path(folder, env), display, root=folder, limit=MAX_RELEASE_BYTES)
    c = Checker(doc)
    if doc.value is None:
        c.fail((), "file is empty; 'image' is required")
        c.raise_if_any()
    v = c.mapping((), doc.value, RELEASE_KEYS)
    image = _pinned(c, ("image",), v.get("image"), fn_name, repository, required=True)
    src = c.mapping(("source",), v.get("source"), SOURCE_KEYS)
    commit = None
    if src.get("commit") is not None:
        try:
            commit = GitSha(str(src["commit"]))
        except ValueError as e:
            c.fail(("source", "commit"), str(e))
    for k in ("repo", "ref", "run"):
        c.typed(("source", k), src.get(k), str)
    source_time = units.utc_seconds(c.typed(("source", "time"), src.get("time"), str))
    if src.get("time") is not None and source_time is None:
        c.fail(("source", "time"), f"'{shown(src.get('time'))}' is not a UTC time like 2026-11-22T10:00:00Z")
    released = c.typed(("releasedAt",), v.get("releasedAt"), str)
    prev = c.mapping(("previous",), v.get("previous"), PREVIOUS_KEYS)
    prev_image = _pinned(c, ("previous", "image"), prev.get("image"), fn_name, repository, required=bool(prev))
    prev_rev = c.typed(("previous", "revision"), prev.get("revision"), str)
    prev_src = c.mapping(("previous", "source"), prev.get("source"), SOURCE_KEYS)
    # Only this function's own revisions: traffic to another's would serve its code here.
    if prev_rev is not None and not _own_revision(prev_rev, fn_name):
        c.fail(("previous", "revision"), f"'{shown(prev_rev)}' is not a revision of this function ({fn_name}-<8 hex>, "
               f"e.g. {fn_name}-1a2b3c4d)")
        prev_rev = None
    rollback_of = c.typed(("rollbackOf",), v.get("rollbackOf"), str)
    revision = c.typed(("revision",), v.get("revision"), str)
    if revision is not None and not _own_revision(revision, fn_name):
        c.fail(("revision",), f"'{shown(revision)}' is not a revision of this function ({fn_name}-<8 hex>)")
        revision = None
    # Written by the bridge as it walks the canary's steps (bridge/canary.py).
    canary = c.mapping(("canary",), v.get("canary"), CANARY_KEYS)
    step = c.integer(("canary", "step"), canary.get("step"), 1, 99)
    canary_at = c.typed(("canary", "at"), canary.get("at"), str)
    promoted = c.typed(("promoted",), v.get("promoted"), bool)
    c.raise_if_any()
    return Release(
        path=display, image=image, source_repo=src.get("repo"), source_commit=commit,
        source_ref=src.get("ref"), source_run=src.get("run"), released_at=released,
        previous_image=prev_image, previous_revision=prev_rev, rollback_of=rollback_of,
        previous_source=dict(prev_src) or None, source_time=source_time, revision=revision,
        canary_step=step, promoted=bool(promoted), canary_at=canary_at,
    )


def _own_revision(name: str, fn_name: str) -> bool:
    digest = name[len(fn_name) + 1:]
    return (name.startswith(fn_name + "-") and len(digest) == REVISION_HASH_LEN
            and all(ch in "0123456789abcdef" for ch in digest))


def _pinned(c: Checker, path, value, fn_name: str, repository: str | None, *, required: bool):
    if value is None:
        if required:
            c.fail(path, "is required: <repository>[:tag]@sha256:<64 hex>")
        return None
    if not isinstance(value, str):
        c.fail(path, "expected an image reference string")
        return None
    try:
        ref = PinnedImage.parse(value)
    except ValueError as e:
        c.fail(path, str(e))
        return None
    if repository is not None:
        if ref.repository != repository:
            c.fail(path, f"'{shown(ref.repository)}' is not this function's repository '{repository}'")
            return None
    elif ref.repository.rsplit("/", 1)[-1] != fn_name:
        c.fail(path, f"'{ref.repository}' is not this function's repository (<registry>/{fn_name}); set 'image' in function.yaml if it lives elsewhere")
        return None
    return ref


def check_release(folder: str, env: str, fn_name: str, repository: str | None, display: str) -> list:
    try:
        load_release(folder, env, fn_name, repository, display)
    except SpecError as e:
        return e.problems
    return []
