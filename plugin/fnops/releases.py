"""Writing releases/<env>.yaml: release (bump), promote and rollback as changes to a tree.

Each operation re-reads the pin at the current branch tip and rewrites it, so
`gitops.publish` can redo it after a lost push race. Existing files keep their comments
and formatting (round-trip YAML); a pin that is already what we would write produces no
commit. The bridge calls the same `rollback` operation.
"""

from __future__ import annotations

import os
import time
from collections import namedtuple

from .errors import PermanentError
from .types import PinnedImage

HEADER = "Written by fnops (bump, promote, rollback). Comments are kept; values are rewritten."

Source = namedtuple("Source", "repo commit ref run", defaults=(None, None, None, None))
# What one operation did to one pin. action: release | promote | rollback
Change = namedtuple("Change", "action function environment image source previous_image rollback_of path")


class Refused(PermanentError):
    """A guard said no (rollback of a rollback, nothing to roll back to, …)."""


def released_at() -> str:
    """Now, UTC — or SOURCE_DATE_EPOCH, for reproducible runs."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(epoch) if epoch else time.time()))


def revision_of(fn, release) -> str | None:
    """The Knative revision name `fnops render` gives this pin (None for deployer keda)."""
    if fn.deployer != "knative":
        return None
    from .render import RenderOptions, knative

    return knative.service(fn, release, RenderOptions())["spec"]["template"]["metadata"]["name"]


def _source_of(rel) -> dict | None:
    if rel is None:
        return None
    src = {"repo": rel.source_repo, "commit": rel.source_commit, "ref": rel.source_ref, "run": rel.source_run}
    src = {k: str(v) for k, v in src.items() if v}
    return src or None


class PinOp:
    """One function × environment; `kind` is release, promote or rollback."""

    def __init__(self, functions_dir: str, name: str, env: str, kind: str, *, image: PinnedImage | None = None,
                 source: Source | None = None, from_env: str | None = None):
        self.functions_dir, self.name, self.env, self.kind = functions_dir, name, env, kind
        self.image, self.source, self.from_env = image, source, from_env

    def apply(self, root: str) -> Change | None:
        from .spec import load_function, load_release_for, release_path

        rel_folder = os.path.join(self.functions_dir, self.name)
        folder = os.path.join(root, rel_folder)
        if not os.path.isfile(os.path.join(folder, "function.yaml")):
            raise Refused(f"{rel_folder}/function.yaml: no such function on the target branch")
        fn = load_function(folder, self.env)
        path = release_path(folder, self.env)
        current = load_release_for(fn) if os.path.exists(path) else None
        values = getattr(self, "_" + self.kind)(fn, folder, current)
        if values is None:
            return None
        write_pin(path, values)
        src = values.get("source") or {}
        return Change(self.kind, self.name, self.env, values["image"], src,
                      current.image if current else None, values.get("rollbackOf"),
                      os.path.relpath(path, root))

    def _release(self, fn, folder, current, image=None, source=None):
        image = image or self.image
        if current is not None and current.image == image:
            return None
        if fn.image and image.repository != fn.image:
            from .errors import UsageError

            raise UsageError(f"--image {image}: not this function's repository '{fn.image}'")
        values = {"image": str(image)}
        src = source if source is not None else {k: v for k, v in (self.source or Source())._asdict().items() if v}
        if src:
            values["source"] = src
        values["releasedAt"] = released_at()
        if current is not None:
            prev = {"image": str(current.image)}
            rev = revision_of(fn, current)
            if rev:
                prev["revision"] = rev
            src_before = _source_of(current)
            if src_before:
                prev["source"] = src_before
            values["previous"] = prev
        return values

    def _promote(self, fn, folder, current):
        from .spec import load_function, load_release_for

        src_fn = load_function(folder, self.from_env)
        if not os.path.exists(os.path.join(folder, "releases", f"{self.from_env}.yaml")):
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
            values["source"] = {k: str(v) for k, v in current.previous_source.items() if v}
        values["releasedAt"] = released_at()
        values["rollbackOf"] = str(current.image)
        return values


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
    for key in ("image", "source", "releasedAt", "previous", "rollbackOf"):
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


def commit_message(changes: list[Change], why: str | None = None) -> str:
    """Title says what, body says why, trailers say it again for machines."""
    c0 = changes[0]
    if len(changes) == 1:
        if c0.action == "rollback":
            title = f"fnops: roll back {c0.function} in {c0.environment} to {short(c0.image)}"
        elif c0.action == "promote":
            title = f"fnops: promote {c0.function} to {c0.environment} ({short(c0.image)})"
        else:
            title = f"fnops: release {c0.function} to {c0.environment} ({short(c0.image)})"
    else:
        envs = sorted({c.environment for c in changes})
        title = f"fnops: {c0.action} {len(changes)} functions to {', '.join(envs)}"
    body = []
    if why:
        body.append(why)
    for c in changes:
        was = f" (was {short(c.previous_image)})" if c.previous_image else ""
        src = c.source or {}
        origin = f" from {src.get('repo', '')}@{str(src['commit'])[:7]}" if src.get("commit") else ""
        body.append(f"- {c.function} [{c.environment}]: {c.image}{was}{origin}")
    trailers = []
    for c in changes:
        trailers += [f"Fnops-Action: {c.action}", f"Fnops-Function: {c.function}",
                     f"Fnops-Environment: {c.environment}", f"Fnops-Image: {c.image}"]
        if (c.source or {}).get("commit"):
            trailers.append(f"Fnops-Source-Commit: {c.source['commit']}")
        if c.rollback_of:
            trailers.append(f"Fnops-Rollback-Of: {c.rollback_of}")
    return f"{title}\n\n" + "\n".join(body) + "\n\n" + "\n".join(trailers) + "\n"


def review_branch(ops: list[PinOp]) -> str:
    """One stable branch per function × environment set, so a new run updates its open PR."""
    names = sorted({op.name for op in ops})
    envs = sorted({op.env for op in ops})
    return f"fnops/{'+'.join(envs)}/{names[0] if len(names) == 1 else f'{len(names)}-functions-' + '-'.join(names)[:60]}"


def run(ops: list[PinOp], *, repo: str | None, url: str | None, branch: str, token: str | None,
        why: str | None = None, publish_kwargs=None, mode: str = "push", github_repo: str | None = None,
        api_url: str | None = None, api_token: str | None = None):
    """Apply every op in one commit on `branch` and push it — or, in PR mode, onto a review
    branch with a pull request into `branch`. Returns (sha | None, changes, pr url | None)."""
    from . import gitops

    applied: list[Change] = []

    def change(root):
        applied.clear()
        for op in ops:
            c = op.apply(root)
            if c is not None:
                applied.append(c)
        if not applied:
            return None
        return [c.path for c in applied], commit_message(applied, why)

    if mode == "pr":
        from . import pullrequest

        prs = pullrequest.PullRequests(pullrequest.repo_slug(github_repo or url), api_token or token, api_url)
        head = review_branch(ops)
        with gitops.scratch_tree(repo, url, branch, token) as tree:
            sha, new = gitops.publish_branch(tree, branch, head, change, **(publish_kwargs or {}))
        if sha is None:
            return None, list(applied), None
        title = commit_message(applied, why).splitlines()[0]
        pr = prs.open_or_update(head=head, base=branch, title=title, body=pullrequest.body_for(applied, why),
                                comment=new)
        return sha, list(applied), pr
    with gitops.scratch_tree(repo, url, branch, token) as tree:
        sha = gitops.publish(tree, branch, change, **(publish_kwargs or {}))
    return sha, list(applied), None
