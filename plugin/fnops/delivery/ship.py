"""`fnops ship`: detect changed functions, build, push, read the digest, pin — one commit.

Order matters for "nothing half-done": every spec is validated before anything is built,
every image is built before anything is pushed, and the pin commit comes only after every
push succeeded. (docker buildx pushes as it builds, so with it a failed build can leave
earlier functions' tags in the registry; they are never pinned.)
"""

from __future__ import annotations

import os
import shutil
from collections import namedtuple

from ..errors import SpecError, UsageError
from ..types import GitSha, PinnedImage, Repository
from .detect import all_functions, changed_functions, repo_root

Shipped = namedtuple("Shipped", "function environment image digest pushed")


def ship(*, env: str, registry: str | None, functions_dir: str = "functions", builder_name: str = "buildah",
         since: str | None = None, every: bool = False, base_image: str | None = None, dry_run: bool = False,
         gitops_repo: str | None = None, branch: str | None = None, token: str | None = None, source=None,
         builder=None, publish_kwargs=None, pin: bool = True, mode: str = "push", github_repo: str | None = None,
         builder_options=None):
    """-> (list[Shipped], commit sha | None, pull request URL | None)."""
    from . import commits, pins, runtimes
    from .build import builder as make_builder
    from .build import is_loopback
    from ..spec import load_function

    root = repo_root()
    if source is None or not source.commit:
        raise UsageError("no source commit: run in a Git checkout or set GITHUB_SHA")
    GitSha(source.commit)
    names = all_functions(root, functions_dir) if every or not since else changed_functions(root, functions_dir, since)
    fns, problems = [], []
    for name in names:
        try:
            # Relative paths, so errors and annotations name the file as the repository does.
            fns.append(load_function(os.path.relpath(os.path.join(root, functions_dir, name)), env))
        except SpecError as e:
            problems += e.problems
    if problems:
        raise SpecError(problems)
    plan = []
    for fn in fns:
        if fn.runtime == "image":
            continue  # nothing to build; pin it with `fnops bump`
        repo = fn.image or (f"{registry.rstrip('/')}/{fn.name}" if registry else None)
        if repo is None:
            raise UsageError(f"{fn.name}: no image repository; pass --registry or set 'image' in function.yaml")
        try:
            Repository(repo)
        except ValueError as e:
            raise UsageError(f"--registry: {e}") from None
        plan.append((fn, f"{repo}:sha-{source.commit[:7]}"))
    if not plan:
        return [], None, None

    b = builder or make_builder(builder_name, **(builder_options or {}))
    build_args = [f"BASE_IMAGE={base_image}"] if base_image else []
    built, contexts = [], []
    try:
        for fn, ref in plan:
            ctx, dockerfile = runtimes.build_context(fn, base_image)
            contexts.append(ctx)
            tls = not (is_loopback(ref) or (base_image and is_loopback(base_image)))
            b.build(ctx, dockerfile, ref, build_args=build_args, tls_verify=tls, scope=f"fnops-{fn.name}")
            built.append((fn, ref, tls))
        if dry_run:
            return [Shipped(fn.name, env, ref, None, False) for fn, ref, _ in built], None, None
        pushed = []
        for fn, ref, tls in built:
            digest = b.push(ref, tls_verify=tls)
            pushed.append((fn, PinnedImage.parse(f"{ref}@{digest}")))
    finally:
        for ctx in contexts:
            shutil.rmtree(ctx, ignore_errors=True)
        for _, ref, _ in built:
            b.remove(ref)

    if not pin:
        return [Shipped(fn.name, env, str(img), str(img.digest), True) for fn, img in pushed], None, None
    ops = [pins.PinOp(functions_dir, fn.name, env, "release", image=img, source=source) for fn, img in pushed]
    why = f"Built from {source.repo or 'this repository'}@{source.commit[:7]}" + (f" ({source.run})" if source.run else "") + "."
    sha, _, pr = commits.commit_pins(ops, repo=None if gitops_repo else root, url=gitops_repo, branch=branch or "main",
                              token=token, why=why, publish_kwargs=publish_kwargs, mode=mode,
                              github_repo=github_repo)
    return [Shipped(fn.name, env, str(img), str(img.digest), True) for fn, img in pushed], sha, pr
