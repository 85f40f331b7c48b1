"""Pins: release (bump), promote and rollback as changes to releases/<env>.yaml in a tree.

Each operation re-reads the pin at the current branch tip and rewrites it, so
`gitops.publish` can redo it after a lost push race. Existing files keep their comments
and formatting (round-trip YAML); a pin that is already what we would write produces no
change. The bridge calls the same `rollback` operation.
"""

from __future__ import annotations

import os
import time
from collections import namedtuple

from ..errors import PermanentError
from ..types import PinnedImage
from .origin import Source

HEADER = "Written by fnops (bump, promote, rollback). Comments are kept; values are rewritten."
OWNED_KEYS = ("image", "source", "releasedAt", "revision", "previous", "rollbackOf", "canary", "promoted")

# What one operation did to one pin. action: release | promote | rollback | canary (a step or the
# promotion of a canary, written by the bridge)
Change = namedtuple("Change", "action function environment image source previous_image rollback_of path")


class Refused(PermanentError):
    """A guard said no (rollback of a rollback, nothing to roll back to, an older source, …)."""


def declared_environments(root: str, functions_dir: str) -> set[str]:
    """Environments the repository knows: any function's overlay key or release file."""
    from .. import yamldoc
    from ..errors import SpecError
    from ..spec.function import environments_of

    base = os.path.join(root, functions_dir)
    out: set[str] = set()
    for name in sorted(os.listdir(base)) if os.path.isdir(base) else []:
        folder = os.path.join(base, name)
        if os.path.isfile(os.path.join(folder, "function.yaml")):
            try:
                out.update(environments_of(yamldoc.load(os.path.join(folder, "function.yaml"), root=folder), folder))
            except SpecError:
                continue
    return out


def released_at() -> str:
    """Now, UTC — or SOURCE_DATE_EPOCH, for reproducible runs."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(epoch) if epoch else time.time()))


def revision_of(fn, release) -> str | None:
    """The Knative revision name `fnops render` gives this pin (None for deployer keda)."""
    if fn.deployer != "knative":
        return None
    from ..render import RenderOptions, knative

    return knative.service(fn, release, RenderOptions())["spec"]["template"]["metadata"]["name"]


def ran_revision(fn, rel) -> str | None:
    """The revision a pin ran: the one it recorded when written. A pin from before the record
    is rendered now, with today's function.yaml — right unless that changed since (F5)."""
    if rel is None:
        return None
    return rel.revision or revision_of(fn, rel)


def _source_of(rel) -> dict | None:
    from ..spec.units import utc_text

    if rel is None:
        return None
    src = _strs({"repo": rel.source_repo, "commit": rel.source_commit, "ref": rel.source_ref, "run": rel.source_run,
                 "time": utc_text(rel.source_time) if rel.source_time is not None else None})
    return src or None


def _strs(mapping: dict) -> dict:
    """A source mapping as a pin writes it: text values, empty ones left out."""
    return {k: str(v) for k, v in mapping.items() if v}


class PinOp:
    """One function × environment; `kind` is release, promote or rollback."""

    def __init__(self, functions_dir: str, name: str, env: str, kind: str, *, image: PinnedImage | None = None,
                 source: Source | None = None, from_env: str | None = None, history=None,
                 allow_older: bool = False, new_environment: bool = True, unapproved_push: bool = False,
                 late_ok: bool = False, missing_ok: bool = False):
        """`history` (a ledger.History of the source repository) answers whether the pinned
        source comes before the new one; `new_environment` False refuses to create a pin
        in an environment the repository does not declare; `unapproved_push` True refuses
        to push straight into an environment with `approval: required`; `late_ok` True (ship,
        pin) skips a release whose source is older than the pinned one instead of refusing."""
        self.functions_dir, self.name, self.env, self.kind = functions_dir, name, env, kind
        self.image, self.source, self.from_env = image, source, from_env
        self.history, self.allow_older, self.new_environment = history, allow_older, new_environment
        self.unapproved_push = unapproved_push
        # Why the last apply() changed nothing: "unchanged" (same digest already pinned) or
        # "pinned-newer" (a late run: newer source already pinned; not a failure).
        self.outcome: str | None = None
        self.late_ok = kind == "release" and late_ok
        self.missing_ok = missing_ok  # promote --all: a function not pinned in from_env is left alone
        self.expect_image, self.step = None, None  # kind canary: the release it moves, and to what

    @classmethod
    def canary(cls, functions_dir: str, name: str, env: str, image: str, step: int | None) -> "PinOp":
        """The bridge's canary move for the release pinning `image`: to `step` percent, or
        promoted (None)."""
        op = cls(functions_dir, name, env, "canary")
        op.expect_image, op.step = image, step
        return op

    def apply(self, root: str) -> Change | None:
        from ..spec import load_function, load_release_for, release_path

        self.outcome = None

        rel_folder = os.path.join(self.functions_dir, self.name)
        folder = os.path.join(root, rel_folder)
        if not os.path.isfile(os.path.join(folder, "function.yaml")):
            raise Refused(f"{rel_folder}/function.yaml: no such function on the target branch")
        # A link on the way to releases/ would have the pin written wherever it points, outside
        # the repository, before git refused to add a path beyond a link.
        real_root = os.path.realpath(root)
        if os.path.realpath(os.path.join(folder, "releases")) != os.path.normpath(os.path.join(real_root, rel_folder,
                                                                                              "releases")):
            raise Refused(f"{rel_folder}/releases: a symbolic link is on the way; pins are written only to real "
                          "folders inside the repository")
        fn = load_function(folder, self.env)
        path = release_path(folder, self.env)
        current = load_release_for(fn) if os.path.exists(path) else None
        declared = declared_environments(root, self.functions_dir) if current is None and not self.new_environment \
            else None
        if declared is not None and self.env not in declared:
            known = ", ".join(sorted(declared)) or "none"
            raise Refused(f"environment '{self.env}' is not declared by any function (declared: {known}); "
                          "add it under `environments:` in function.yaml, or pass --new-environment")
        if self.unapproved_push and self.kind != "rollback" and fn.approval == "required":
            raise Refused(f"{rel_folder}: environment '{self.env}' requires approval; use --mode pr, or "
                          "--mode push --approved once a reviewer has approved this run")
        values = getattr(self, "_" + self.kind)(fn, folder, current)
        if values is None:
            return None
        write_pin(path, values)
        src = values.get("source") or {}
        action = self.kind if self.kind != "canary" else f"canary-{self.step}" if self.step else "canary-promote"
        return Change(action, self.name, self.env, values["image"], src,
                      current.image if current else None, values.get("rollbackOf"),
                      os.path.relpath(path, root))

    def _release(self, fn, folder, current, image=None, source=None):
        image = image or self.image
        if current is not None and (current.image == image or (
                current.image.repository == image.repository and current.image.digest == image.digest)):
            # The same bytes under another tag (an unchanged folder shipped at a later commit):
            # a new pin would make `previous` the very same code, and a rollback restore nothing.
            self.outcome = "unchanged"
            return None
        src = source if source is not None else {k: v for k, v in (self.source or Source())._asdict().items() if v}
        new_commit = src.get("commit")
        same_source = current is not None and current.source_commit and current.source_commit == new_commit
        if self.kind == "release" and current is not None and not same_source and not self.allow_older:
            if self._check_newer(current, new_commit, src.get("time")) == "older":
                self.outcome = "pinned-newer"
                return None
        if fn.image and image.repository != fn.image:
            from ..errors import UsageError

            raise UsageError(f"--image {image}: not this function's repository '{fn.image}'")
        values = {"image": str(image)}
        if src:
            values["source"] = src
        values["releasedAt"] = released_at()
        # What `fnops render` names this release's revision now, with this function.yaml: the
        # stable side of the next canary and the target of a rollback route to exactly it.
        from ..spec.model import Release

        rev = revision_of(fn, Release(path="", image=image))
        if rev:
            values["revision"] = rev
        if same_source:
            # A rebuild of the same code (new base image, say): `previous` keeps naming the
            # release before it, so a rollback still restores other code.
            prev = _previous_of(current)
            if prev:
                values["previous"] = prev
        elif current is not None:
            prev = {"image": str(current.image)}
            rev = ran_revision(fn, current)
            if rev:
                prev["revision"] = rev
            src_before = _source_of(current)
            if src_before:
                prev["source"] = src_before
            values["previous"] = prev
        return values

    def _check_newer(self, current, new_commit, new_time: str | None) -> str | None:
        """None: the new source may replace the pinned one. "older": it is older (a late run,
        when `late_ok`). Refused otherwise."""
        from ..spec.units import utc_seconds

        where = f"{self.functions_dir}/{self.name}/releases/{self.env}.yaml"
        old = current.source_commit
        if old is None:
            return None  # a pin that records no source cannot be ordered; replacing it loses nothing
        hint = "pass --allow-older to pin it anyway"
        if not new_commit:
            raise Refused(f"{where} pins source {old[:7]}; this release records no source commit, so it cannot "
                          f"be shown to be newer ({hint})")
        order = self.history.is_ancestor(old, new_commit) if self.history is not None else None
        if order is None:
            # No history to ask (a GitOps repository written from a job that cloned only it):
            # the commit times the pins record order them.
            new_t = utc_seconds(new_time)
            if current.source_time is not None and new_t is not None:
                if new_t >= current.source_time:
                    return None
                return self._older(where, old, new_commit, hint)
            raise Refused(f"{where} pins source {old[:7]}, which this clone's history does not know and whose "
                          f"pin records no source time, so {new_commit[:7]} cannot be shown to be newer (fetch "
                          f"full history, e.g. fetch-depth: 0, or {hint})")
        if not order:
            if self.history.is_ancestor(new_commit, old):
                return self._older(where, old, new_commit, hint)
            raise Refused(f"{where} pins source {old[:7]}, which is not an ancestor of {new_commit[:7]}; "
                          f"not replacing a pin with unrelated code ({hint})")
        return None

    def _older(self, where, old, new_commit, hint) -> str:
        if self.late_ok:
            return "older"
        raise Refused(f"{where} pins source {old[:7]}, which is newer than {new_commit[:7]}; "
                      f"not replacing a pin with older code ({hint})")

    def _promote(self, fn, folder, current):
        from ..spec import load_function, load_release_for

        src_fn = load_function(folder, self.from_env)
        if not os.path.exists(os.path.join(folder, "releases", f"{self.from_env}.yaml")):
            if self.missing_ok:
                return None
            raise Refused(f"{self.name}: nothing to promote, no release pinned in '{self.from_env}'")
        src = load_release_for(src_fn)
        return self._release(fn, folder, current, image=src.image, source=_source_of(src) or {})

    def _rollback(self, fn, folder, current):
        where = f"{self.functions_dir}/{self.name}/releases/{self.env}.yaml"
        if current is None:
            raise Refused(f"{where}: no release pinned, nothing to roll back")
        if current.rollback_of:
            raise Refused(f"{where}: already a rollback (of {current.rollback_of}); "
                          "not rolling back a rollback — release a fixed image with `fnops bump`")
        if current.previous_image is None:
            raise Refused(f"{where}: no previous release recorded, nothing to roll back to")
        values = {"image": str(current.previous_image)}
        if current.previous_source:
            values["source"] = _strs(current.previous_source)
        values["releasedAt"] = released_at()
        if current.previous_revision:
            values["revision"] = current.previous_revision  # the one that ran: Knative re-uses it
        values["rollbackOf"] = str(current.image)
        return values

    def _canary(self, fn, folder, current):
        """The bridge's next canary step (`step`: a percent) or its promotion (`step` None) of
        the release pinning `expect_image`. Pins only move forward: a newer release, a rollback
        or a step already taken makes this a no-op or a refusal, never an overwrite."""
        where = f"{self.functions_dir}/{self.name}/releases/{self.env}.yaml"
        if current is None or str(current.image) != str(self.expect_image):
            now = current.image if current is not None else "nothing"
            raise Refused(f"{where}: superseded, {self.env} now pins {now}")
        if current.rollback_of:
            raise Refused(f"{where}: rolled back (to {current.image}); the canary is over")
        if current.promoted or (self.step is not None and (current.canary_step or 0) >= self.step):
            self.outcome = "unchanged"
            return None
        values = {"image": str(current.image), "source": _source_of(current), "releasedAt": current.released_at,
                  "revision": current.revision, "previous": _previous_of(current)}
        if self.step is None:
            values["promoted"] = True
        else:
            values["canary"] = {"step": self.step, "at": released_at()}
        return values


def _previous_of(rel) -> dict | None:
    if rel is None or rel.previous_image is None:
        return None
    prev = {"image": str(rel.previous_image)}
    if rel.previous_revision:
        prev["revision"] = rel.previous_revision
    if rel.previous_source:
        prev["source"] = _strs(rel.previous_source)
    return prev


def write_pin(path: str, values: dict) -> None:
    """Rewrite the pin in place: keys fnops owns are set or removed, everything else
    (comments, key order, quoting, unknown-to-us formatting) is kept. Atomic replace."""
    from ruamel.yaml import YAML
    from ruamel.yaml.comments import CommentedMap
    from ruamel.yaml.scalarstring import DoubleQuotedScalarString

    yaml = YAML()
    yaml.preserve_quotes = True
    yaml.width = 4096
    data = None
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            data = yaml.load(f)
    if not isinstance(data, CommentedMap):
        data = CommentedMap()
        data.yaml_set_start_comment(HEADER)
    for key in OWNED_KEYS:
        new = values.get(key)
        if new is None:
            data.pop(key, None)
        elif isinstance(new, dict):
            _merge_map(data, key, new)
        else:
            data[key] = DoubleQuotedScalarString(new) if key == "releasedAt" else new
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.fnops-tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        yaml.dump(data, f)
    os.replace(tmp, path)


def _merge_map(parent, key, new: dict) -> None:
    from ruamel.yaml.comments import CommentedMap

    cur = parent.get(key)
    if not isinstance(cur, CommentedMap):
        cur = CommentedMap()
        parent[key] = cur
    for k in list(cur):
        if k not in new:
            del cur[k]
    for k, v in new.items():
        if isinstance(v, dict):
            _merge_map(cur, k, v)
        else:
            cur[k] = v


def short(image) -> str:
    """`sha-1a2b3c4` (the tag), else the start of the digest."""
    if not image:
        return "?"
    ref = PinnedImage.parse(str(image))
    return ref.tag or ref.digest[:19]
