"""`fnops ship`: what needs shipping, build, push, read the digest, pin — one commit.

What needs shipping is decided by the ledger (`ledger.plan`): each function whose folder
differs from the source its pin records at the branch tip, or that has no pin. Order
matters for "nothing half-done": every spec is validated before anything is built, every
image is built — and every function's `test:` has passed in its image (imagetest) — before
anything is pushed, and the pin commit comes only after every push succeeded. A failed test
stops the run as a failed build does: nothing of it is pushed or pinned. (docker buildx
pushes as it builds, so with it a failed build can leave earlier functions' tags in the
registry; they are never pinned. A tested function it builds into docker first, and pushes
only after every test passed.)
"""

from __future__ import annotations

import os
import shutil
from collections import namedtuple

from ..errors import SpecError, UsageError
from ..types import GitSha, PinnedImage, Repository
from .detect import all_functions, changed_functions, repo_root

# imageid and metadata: build-push-action's outputs of the same names, per function; test:
# how its `test:` went (imagetest.as_dict), None when it declares none.
Shipped = namedtuple("Shipped", "function environment image digest pushed reason imageid metadata test",
                     defaults=(None, None, None))
# tests: function -> its declared ImageTest (what `--plan` shows will run), for planned functions.
Plan = namedtuple("Plan", "items skipped tests", defaults=(None,))


def _tip_plan(root, functions_dir, env, names, head, history, gitops_repo, branch, token):
    """Plan against the pins at the tip of the target branch."""
    from . import gitops, ledger

    with gitops.scratch_tree(None if gitops_repo else root, gitops_repo, branch, token) as tree:
        return ledger.plan(history, tree.cwd, functions_dir, names, env, head)


def make_plan(*, root: str, env: str, functions_dir: str, since: str | None, every: bool, head: str,
              history, gitops_repo: str | None, branch: str, token: str | None) -> Plan:
    from .ledger import PlanItem

    if every:
        return Plan([PlanItem(n, env, "forced", head, None) for n in all_functions(root, functions_dir)], [])
    if since:
        return Plan([PlanItem(n, env, "since", head, None)
                     for n in changed_functions(history, functions_dir, since, head)], [])
    items, skipped = _tip_plan(root, functions_dir, env, all_functions(root, functions_dir), head, history,
                               gitops_repo, branch, token)
    return Plan(items, skipped)


def approval_mode(fns, env: str, mode: str | None, approved: bool) -> str:
    """PR mode for environments with `approval: required`, unless the caller says both
    `--mode push` and `--approved` (a reviewer approved the run, e.g. a GitHub Environment)."""
    gated = sorted(fn.name for fn in fns if fn.approval == "required")
    if not gated:
        return mode or "push"
    if mode == "push" and not approved:
        raise UsageError(f"environment '{env}' requires approval for {', '.join(gated)}: use --mode pr, or "
                         "--mode push --approved once a reviewer has approved this run")
    return mode or "pr"


def ship(*, env: str, registry: str | None, functions_dir: str = "functions", builder_name: str = "buildah",
         since: str | None = None, every: bool = False, base_image: str | None = None, dry_run: bool = False,
         gitops_repo: str | None = None, branch: str | None = None, token: str | None = None, source=None,
         builder=None, publish_kwargs=None, pin: bool = True, mode: str | None = None,
         github_repo: str | None = None, builder_options=None, plan_only: bool = False, allow_older: bool = False,
         approved: bool = False, jobs: int | None = None, only: tuple = (), extra_build_args=(), warn=None,
         target: str | None = None):
    """-> (list[Shipped], commit sha | None, pull request URL | None, Plan). `warn(Problem |
    str)` hears what builds but may not rebuild the same (unpinned requirements, a builder
    that cannot build reproducibly)."""
    from . import commits, ledger, origin, pins, runtimes
    from .runtimes.requirements import unpinned as unpinned_requirements
    from ..spec import load_function
    from .build import builder as make_builder
    from .build import is_loopback

    root = repo_root()
    if source is None or not source.commit:
        raise UsageError("no source commit: run in a Git checkout or set GITHUB_SHA")
    try:
        head = GitSha(source.commit)
    except ValueError as e:
        raise UsageError(f"source commit: {e}") from None
    history = ledger.History(root, gitops_repo)
    if not history.has(head):
        raise UsageError(f"source commit {head[:7]} is not in this clone (GITHUB_SHA must be the checked-out commit)")
    branch = branch or "main"
    plan = make_plan(root=root, env=env, functions_dir=functions_dir, since=since, every=every, head=head,
                     history=history, gitops_repo=gitops_repo, branch=branch, token=token)
    if only:
        unknown = sorted(set(only) - set(all_functions(root, functions_dir)))
        if unknown:
            raise UsageError(f"--function {unknown[0]}: no such function under {functions_dir}/")
        plan = Plan([i for i in plan.items if i.function in only], [s for s in plan.skipped if s.function in only])
    fns, problems = [], []
    for item in plan.items:
        try:
            # Relative paths, so errors and annotations name the file as the repository does.
            fns.append(load_function(os.path.relpath(os.path.join(root, functions_dir, item.function)), env))
        except SpecError as e:
            problems += e.problems
    if problems:
        raise SpecError(problems)
    plan = plan._replace(tests={fn.name: fn.test for fn in fns if fn.test is not None and fn.runtime != "image"})
    reasons = {i.function: i.reason for i in plan.items}
    mode = approval_mode(fns, env, mode, approved) if pin else (mode or "push")
    work = []
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
        work.append((fn, f"{repo}:sha-{head[:7]}"))
    for fn, _ in work:
        if fn.runtime.startswith("python") and warn is not None:
            for problem in unpinned_requirements(fn.folder):
                warn(problem)
    # A node folder whose dependencies no lockfile pins is refused before anything is built.
    for fn, _ in work:
        if fn.runtime.startswith("node"):
            try:
                runtimes.npm.needs_install(fn.folder)
            except SpecError as e:
                problems += e.problems
    if problems:
        raise SpecError(problems)
    if plan_only or not work:
        return [], None, None, plan

    b = builder or make_builder(builder_name, **(builder_options or {}))
    if warn is not None and not dry_run and hasattr(b, "reproducibility_warning"):
        why = b.reproducibility_warning()
        if why:
            warn(why)
    if warn is not None and any(fn.test is not None for fn, _ in work):
        from .imagetest import isolation_warning

        why = isolation_warning(b)
        if why:
            warn(why)
    build_args = ([f"BASE_IMAGE={base_image}"] if base_image else []) + list(extra_build_args)
    built, contexts = [], []

    # buildx pushes while it builds: a function with a test is first built into the local
    # image store (`load`) and tested there, and built again to push only once every test
    # passed (the same layers, from buildx's cache). buildah builds locally anyway.
    push_later = getattr(b, "name", "") == "docker"

    def build_one(fn, ref, push=not dry_run, load=False):
        ctx, dockerfile = runtimes.build_context(fn, base_image)
        contexts.append(ctx)
        tls = not (is_loopback(ref) or (base_image and is_loopback(base_image)))
        b.build(ctx, dockerfile, ref, build_args=build_args, tls_verify=tls, scope=f"fnops-{fn.name}",
                timestamp=source_date_epoch(history, head, os.path.join(functions_dir, os.path.basename(os.path.normpath(fn.folder)))),
                push=push, **({"target": target} if target and fn.runtime == "dockerfile" else {}),
                **({"load": True} if load else {}))
        built.append((fn, ref, tls))
        return fn, ref, tls

    try:
        done = _parallel([lambda fn=fn, ref=ref: build_one(fn, ref, *((False, True) if fn.test and push_later else ()))
                          for fn, ref in work], jobs)
        tests = _run_tests(b, done, jobs)
        if any(o.status != "passed" for o in tests.values()):
            from .imagetest import TestFailed, as_dict

            # As a failed build: nothing of this run is pushed or pinned, not even what passed.
            raise TestFailed([o for o in tests.values() if o.status != "passed"],
                             [Shipped(fn.name, env, ref, None, False, reasons[fn.name], None, None,
                                      as_dict(tests.get(fn.name))) for fn, ref, _ in done])
        if push_later and not dry_run and tests:
            _parallel([lambda fn=fn, ref=ref: build_one(fn, ref) for fn, ref, _ in done if fn.name in tests], jobs)
        if dry_run:
            return [Shipped(fn.name, env, ref, None, False, reasons[fn.name], *_metadata(b, ref),
                            _test_dict(tests, fn.name)) for fn, ref, _ in done], None, None, plan
        digests = _parallel([lambda ref=ref, tls=tls: b.push(ref, tls_verify=tls) for _, ref, tls in done], jobs)
        pushed = [(fn, PinnedImage.parse(f"{ref}@{digest}")) for (fn, ref, _), digest in zip(done, digests)]
        meta = {fn.name: (*_metadata(b, ref), _test_dict(tests, fn.name)) for fn, ref, _ in done}
    finally:
        for ctx in contexts:
            shutil.rmtree(ctx, ignore_errors=True)
        for _, ref, _ in built:
            b.remove(ref)

    results = [Shipped(fn.name, env, str(img), str(img.digest), True, reasons[fn.name], *meta[fn.name])
               for fn, img in pushed]
    if not pin:
        return results, None, None, plan
    if not source.time:
        source = source._replace(time=origin.commit_time(head, root))
    ops = [pins.PinOp(functions_dir, fn.name, env, "release", image=img, source=source, history=history,
                      allow_older=allow_older, unapproved_push=mode == "push" and not approved, late_ok=True)
           for fn, img in pushed]
    why = f"Built from {source.repo or 'this repository'}@{head[:7]}" + (f" ({source.run})" if source.run else "") + "."
    sha, _, pr = commits.commit_pins(ops, repo=None if gitops_repo else root, url=gitops_repo, branch=branch,
                                     token=token, why=why, publish_kwargs=publish_kwargs, mode=mode,
                                     github_repo=github_repo)
    results, plan = settle(results, plan, ops)
    return results, sha, pr, plan


def _run_tests(b, done, jobs) -> dict:
    """Each built function's `test:` in its image, in parallel like the builds; -> function
    -> imagetest.Outcome, for the functions that declare a test."""
    from . import imagetest

    calls = [lambda fn=fn, ref=ref: imagetest.run(b, fn, ref) for fn, ref, _ in done if fn.test is not None]
    return {o.function: o for o in _parallel(calls, jobs)} if calls else {}


def _test_dict(tests: dict, name: str):
    from .imagetest import as_dict

    return as_dict(tests.get(name))


def _metadata(b, ref: str) -> tuple:
    """-> (image ID, the builder's metadata) of a build, as far as the builder tells."""
    meta = b.metadata(ref) if hasattr(b, "metadata") else {}
    return meta.get("containerimage.config.digest"), meta or None


OUTCOMES = {"unchanged": "unchanged (same digest)", "pinned-newer": "pinned-newer"}


def settle(results, plan, ops):
    """What the pin step decided, in the results: a digest already pinned is `unchanged
    (same digest)`; a late run that found newer code pinned is skipped (`pinned-newer`),
    which is not a failure."""
    from .ledger import Skipped

    outcome = {op.name: op.outcome for op in ops if op.outcome}
    results = [r._replace(reason=OUTCOMES[outcome[r.function]]) if r.function in outcome else r for r in results]
    late = [Skipped(r.function, r.environment, "pinned-newer", None) for r in results if r.reason == "pinned-newer"]
    return results, plan._replace(skipped=sorted([*plan.skipped, *late], key=lambda s: s.function))


def _parallel(calls, jobs: int | None) -> list:
    """Run the calls on up to `jobs` threads (builders are processes: threads only wait);
    -> their results in order. Every call finishes before the first failure (in order) is
    raised, so nothing is left half-built behind the error."""
    from concurrent.futures import ThreadPoolExecutor

    jobs = max(1, jobs or os.cpu_count() or 1)
    if jobs == 1 or len(calls) <= 1:
        return [c() for c in calls]
    with ThreadPoolExecutor(max_workers=min(jobs, len(calls)), thread_name_prefix="fnops-build") as pool:
        futures = [pool.submit(c) for c in calls]
        errors = [f.exception() for f in futures]
    for e in errors:
        if e is not None:
            raise e
    return [f.result() for f in futures]


def source_date_epoch(history, head: str, folder: str) -> int | None:
    """Every timestamp in the image: $SOURCE_DATE_EPOCH if set, else the time of the last
    commit that changed the function's folder (outside releases/). Not the shipped commit's
    time: then an unchanged folder shipped at a later commit would get a new digest, and a
    new pin whose `previous` is the very same code."""
    env = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    if env.isascii() and env.isdigit():
        return int(env)
    return history.content_time(head, folder) or history.commit_time(head)
