"""Delivery commands: ship, bump, promote, rollback, status. Each parses, calls one
function of `fnops.delivery`, and prints."""

from __future__ import annotations

import os
import re

import click

from ..delivery.origin import resolve_branch, source_from_environment, token_from
from .gha import notice, warn, write_outputs, write_step_summary
from .group import cli
from .options import env_name, function_name, gitops_flags


OUTPUT = click.option("--output", type=click.Choice(["text", "json"]), default="text", show_default=True,
                      help="json: one object on stdout (functions, commit, pullRequest), for workflows.")
APPROVED = click.option("--approved", is_flag=True,
                        help="With --mode push into an environment with `approval: required`: a reviewer has "
                             "approved this run (e.g. a GitHub Environment's required reviewers).")
NEW_ENV = click.option("--new-environment", is_flag=True,
                       help="Allow creating the first pin of an environment no function declares yet.")


def _history(gitops_url: str | None = None):
    """The source repository's history (this clone), for ordering source commits."""
    from ..delivery.detect import repo_root
    from ..delivery.ledger import History
    from ..errors import UsageError

    try:
        return History(repo_root("."), gitops_url)
    except UsageError:
        return None


def _default_mode(g, function: str, env: str) -> str | None:
    """--mode wins; otherwise an environment with `approval: required` gets a PR."""
    if g["mode"] is not None:
        return g["mode"]
    folder = os.path.join(g["functions_dir"], function)
    if not g["gitops_repo"] and os.path.isfile(os.path.join(folder, "function.yaml")):
        from ..spec import load_function

        return "pr" if load_function(folder, env).approval == "required" else "push"
    return None


@cli.command()
@click.argument("function", callback=function_name)
@click.option("--env", "env", required=True, callback=env_name, help="Environment whose pin to write.")
@click.option("--image", required=True, metavar="REF@sha256:…", help="Digest-pinned image reference.")
@click.option("--source-repo", help="Source repository (default: $GITHUB_REPOSITORY).")
@click.option("--source-commit", help="Source commit (default: $GITHUB_SHA, else HEAD).")
@click.option("--source-ref", help="Source ref (default: $GITHUB_REF).")
@click.option("--run-url", help="URL of the CI run that built the image.")
@click.option("--allow-older", is_flag=True, help="Replace a pin even if its source commit is not an ancestor "
              "of this one (older or unrelated code).")
@APPROVED
@NEW_ENV
@OUTPUT
@gitops_flags
def bump(function, env, image, source_repo, source_commit, source_ref, run_url, allow_older, approved,
         new_environment, output, **g):
    """Pin FUNCTION's image for ENV in releases/<env>.yaml, commit once and push.

    Refuses (exit 1, nothing committed) to replace a pin whose source commit is not an
    ancestor of the new one, unless --allow-older."""
    from ..delivery.origin import Source, commit_time
    from ..delivery.pins import PinOp
    from ..types import GitSha, PinnedImage

    try:
        ref = PinnedImage.parse(image)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--image") from None
    if source_commit:
        try:
            GitSha(source_commit)
        except ValueError as e:
            raise click.BadParameter(str(e), param_hint="--source-commit") from None
    src = source_from_environment()
    src = Source(source_repo or src.repo, source_commit or src.commit, source_ref or src.ref, run_url or src.run,
                 commit_time(source_commit) if source_commit else src.time)
    mode = _default_mode(g, function, env)
    op = PinOp(g["functions_dir"], function, env, "release", image=ref, source=src, history=_history(g["gitops_repo"]),
               allow_older=allow_older, new_environment=new_environment,
               unapproved_push=(mode or "push") == "push" and not approved)
    _publish([op], g, why=f"Release {ref.tag or ref.digest} of {function} to {env}.", mode=mode, output=output)


@cli.command()
@click.argument("function", required=False, callback=lambda c, p, v: v if v is None else function_name(c, p, v))
@click.option("--from", "from_env", required=True, callback=env_name, help="Environment to copy the pin from.")
@click.option("--to", "to_env", required=True, callback=env_name, help="Environment to write.")
@click.option("--all", "every", is_flag=True, help="Every function pinned in --from (one commit): the digests "
              "tested there, not a rebuild.")
@APPROVED
@NEW_ENV
@OUTPUT
@gitops_flags
def promote(function, from_env, to_env, every, approved, new_environment, output, **g):
    """Copy FUNCTION's pin (or, with --all, every function's) from one environment to another."""
    from ..delivery.detect import all_functions, repo_root
    from ..delivery.pins import PinOp

    if from_env == to_env:
        raise click.BadParameter("--from and --to name the same environment", param_hint="--to")
    if bool(function) == every:
        raise click.BadParameter("name a FUNCTION or pass --all", param_hint="FUNCTION")
    names = [function] if function else all_functions(repo_root(), g["functions_dir"])
    modes = {_default_mode(g, name, to_env) for name in names}
    mode = g["mode"] or ("pr" if "pr" in modes else "push" if "push" in modes else None)
    ops = [PinOp(g["functions_dir"], name, to_env, "promote", from_env=from_env, new_environment=new_environment,
                 unapproved_push=(mode or "push") == "push" and not approved, missing_ok=every) for name in names]
    what = function or f"{len(names)} function(s)"
    _publish(ops, g, why=f"Promote {what} from {from_env} to {to_env}.", mode=mode, output=output)


@cli.command()
@click.argument("function", callback=function_name)
@click.option("--env", "env", required=True, callback=env_name, help="Environment to roll back.")
@click.option("--reason", help="Why (goes into the commit message).")
@OUTPUT
@gitops_flags
def rollback(function, env, reason, output, **g):
    """Restore the previous release pin of FUNCTION in ENV (never rolls back a rollback)."""
    from ..delivery.pins import PinOp

    op = PinOp(g["functions_dir"], function, env, "rollback")
    _publish([op], g, why=f"Rollback of {function} in {env}" + (f": {reason}" if reason else "."), output=output)


@cli.command()
@click.option("--env", "env", required=True, callback=env_name, help="Environment to pin the new images in.")
@click.option("--registry", metavar="REG", help="Registry prefix for functions without 'image' (e.g. ghcr.io/acme/functions).")
@click.option("--builder", "builder_name", type=click.Choice(["buildah", "docker"]), default="buildah", show_default=True)
@click.option("--since", metavar="GITREF", help="Ship functions changed since this commit, instead of those whose "
              "folder differs from the source their pin records.")
@click.option("--all", "every", is_flag=True, help="Ship every function, changed or not.")
@click.option("--plan", "plan_only", is_flag=True, help="Only say what would be built and why (no build, no push).")
@click.option("--function", "only", multiple=True, metavar="NAME", help="Only these functions (repeatable): one "
              "job of a matrix fanned out from `--plan`.")
@click.option("--jobs", type=click.IntRange(1, 256), default=None, help="Builds at once (default: the CPU count).")
@click.option("--base-image", metavar="REF", help="Base image for python and node runtimes (default python:<ver>-slim, "
                                                  "node:<major>-slim).")
@click.option("--dry-run", is_flag=True, help="Build everything, push and commit nothing.")
@click.option("--pin/--no-pin", default=True, show_default=True, help="Commit the pushed digests to releases/<env>.yaml.")
@click.option("--allow-older", is_flag=True, help="Pin even over a pin whose source is newer or unrelated.")
@APPROVED
@click.option("--platform", "platforms", multiple=True, metavar="OS/ARCH",
              help="Target platform(s), repeatable or comma-separated (a multi-arch manifest list).")
@click.option("--build-arg", "build_args", multiple=True, metavar="K=V", help="Build arguments (repeatable).")
@click.option("--label", "labels", multiple=True, metavar="K=V", help="Image labels (repeatable).")
@click.option("--cache-from", multiple=True, metavar="SPEC", help="docker builder: buildx cache sources.")
@click.option("--cache-to", multiple=True, metavar="SPEC", help="docker builder: buildx cache exports.")
@click.option("--buildx-builder", metavar="NAME", help="docker builder: the buildx builder instance to use.")
@click.option("--provenance", is_flag=False, flag_value="true", default=None, metavar="[true|false|ATTRS]",
              help="docker builder: attach SLSA provenance (alone or true: buildx's min mode; or attributes such as "
                   "mode=max). Default: none, so the pinned digest repeats.")
@click.option("--default-provenance", metavar="ATTRS", help="docker builder: provenance for builders that can attach "
              "it when --provenance is not given (the action passes build-push-action's default); buildah: none.")
@click.option("--sbom", is_flag=True, help="docker builder: attach an SBOM attestation.")
@click.option("--secret", "secrets", multiple=True, metavar="id=ID,src=FILE|env=VAR",
              help="A build secret for RUN --mount=type=secret (repeatable; buildah and buildx syntax).")
@click.option("--ssh", "ssh", multiple=True, metavar="default|ID=PATH",
              help="An SSH agent socket or key for RUN --mount=type=ssh (repeatable).")
@click.option("--target", metavar="STAGE", help="runtime: dockerfile functions: the build stage to build.")
@click.option("--tag", "tags", multiple=True, metavar="TAG",
              help="Also push each image under this tag of its repository (repeatable); sha-<commit> is always pushed "
                   "and pinned.")
@click.option("--annotation", "annotations", multiple=True, metavar="K=V", help="Image manifest annotations "
              "(repeatable).")
@click.option("--no-cache", is_flag=True, help="Build without the builder's layer cache.")
@OUTPUT
@gitops_flags
def ship(env, registry, builder_name, since, every, plan_only, only, jobs, base_image, dry_run, pin, allow_older,
         approved, platforms, build_args, labels, cache_from, cache_to, buildx_builder, provenance, default_provenance,
         sbom, secrets, ssh, target, tags, annotations, no_cache, output, **g):
    """Build, push and pin (one commit) every function whose folder differs from the
    source its pin records at the branch tip, or that has no pin yet."""
    import json as _json

    from ..delivery.ship import ship as run_ship

    source = source_from_environment()
    url = g["gitops_repo"]
    provenance = _provenance(provenance, "--provenance")
    default_provenance = _provenance(default_provenance, "--default-provenance")
    if (provenance or sbom) and builder_name != "docker":
        raise click.BadParameter("attestations need --builder docker (buildah cannot produce them)",
                                 param_hint="--provenance/--sbom")
    for kv in (*build_args, *labels, *annotations):
        if "=" not in kv or kv.startswith("="):
            raise click.BadParameter(f"'{kv[:60]}' is not KEY=VALUE", param_hint="--build-arg/--label/--annotation")
    for spec in secrets:
        if not re.search(r"(^|,)id=[^,]+", spec) or not re.search(r"(^|,)(src|source|env)=[^,]+", spec):
            raise click.BadParameter("want id=ID,src=FILE or id=ID,env=VAR (the value is not shown)",
                                     param_hint="--secret")
    for tag in tags:
        if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}", tag):
            raise click.BadParameter(f"'{tag[:60]}' is not a tag (letters, digits, '_', '.', '-'; at most 128; no "
                                     "repository: each function's own is used)", param_hint="--tag")
    if target is not None and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", target):
        raise click.BadParameter(f"'{target[:60]}' is not a build stage name", param_hint="--target")
    options = {"platforms": tuple(p for item in platforms for p in item.split(",") if p), "labels": labels,
               "provenance": provenance, "sbom": sbom, "cache_from": cache_from, "cache_to": cache_to,
               "instance": buildx_builder, "default_provenance": default_provenance or None,
               "annotations": annotations, "tags": tags, "secrets": secrets, "ssh": ssh, "no_cache": no_cache}
    if since and every:
        raise click.BadParameter("--since and --all exclude each other", param_hint="--all")
    from ..delivery.imagetest import TestFailed, plan_dict, shown_command
    from ..escape import shown

    try:
        results, sha, pr, plan = run_ship(
            env=env, registry=registry, functions_dir=g["functions_dir"], builder_name=builder_name, since=since,
            every=every, base_image=base_image, dry_run=dry_run, gitops_repo=url, branch=resolve_branch(g["branch"]),
            token=token_from(g["token_env"], url), source=source, pin=pin, mode=g["mode"],
            github_repo=g["github_repo"], builder_options=options, plan_only=plan_only, allow_older=allow_older,
            approved=approved, jobs=jobs, only=tuple(only), extra_build_args=build_args, warn=warn, target=target)
    except TestFailed as e:
        if output == "json":  # what was built and how each test went; nothing pushed (exit 1 follows)
            rows = [{**r._asdict(), "sourceCommit": source.commit} for r in e.results]
            click.echo(_json.dumps({"functions": rows, "skipped": [], "commit": None, "dryRun": dry_run,
                                    "pullRequest": None, "error": str(e)}, sort_keys=True))
        raise
    tests = plan.tests or {}
    planned = [{"function": i.function, "environment": i.environment, "reason": i.reason,
                "sourceCommit": i.source_commit, "pinnedCommit": i.pinned_commit,
                "test": plan_dict(tests.get(i.function))} for i in plan.items]
    skipped = [{"function": s.function, "environment": s.environment, "why": s.why, "pinnedCommit": s.pinned_commit}
               for s in plan.skipped]
    if plan_only:
        if output == "json":
            click.echo(_json.dumps({"plan": planned, "skipped": skipped}, sort_keys=True))
        else:
            for i in plan.items:
                t = tests.get(i.function)
                click.echo(f"{i.function} [{i.environment}] {i.reason}"
                           + (f", then test: {shown(shown_command(t.command), 200)} (timeout {t.timeout}s)" if t else ""))
            click.echo(f"{len(plan.items)} to build, {len(plan.skipped)} up to date or pinned newer")
        write_outputs(plan=_json.dumps(planned, sort_keys=True), count=str(len(planned)))
        return
    # The commit each image was built from: `fnops pin` pins a result only for that commit.
    rows = [{**r._asdict(), "sourceCommit": source.commit} for r in results]
    summary = {"functions": rows, "skipped": skipped, "commit": sha, "dryRun": dry_run, "pullRequest": pr}
    if output == "json":
        click.echo(_json.dumps(summary, sort_keys=True))
    else:
        for r in results:
            if r.reason != "pinned-newer":
                click.echo(f"{r.function} [{r.environment}] {r.image} ({r.reason})" + ("" if r.pushed else " (not pushed)")
                           + (f" test {r.test['status']} in {r.test['seconds']:.1f} s" if r.test else ""))
        for s in plan.skipped:
            line = f"{s.function} [{s.environment}] skipped: {s.why}"
            if s.why == "pinned-newer":  # a late run: newer code is pinned already, not a failure
                notice(line)
            else:
                click.echo(line)
        click.echo(f"pinned in {sha}" if sha else "nothing pinned")
    write_step_summary(results, sha, env)
    # Per-function outputs (fromJSON(steps.x.outputs.digests).hello), and build-push-action's
    # `digest`/`imageid`-style single values when exactly one image was shipped.
    single = results[0] if len(results) == 1 else None
    write_outputs(functions=_json.dumps(rows, sort_keys=True), commit=sha or "", **{"pr-url": pr or ""},
                  digests=_json.dumps({r.function: r.digest for r in results}, sort_keys=True),
                  images=_json.dumps({r.function: r.image for r in results}, sort_keys=True),
                  digest=single.digest or "" if single else "", image=single.image if single else "",
                  imageid=single.imageid or "" if single else "",
                  metadata=_json.dumps({r.function: r.metadata or {} for r in results}, sort_keys=True),
                  count=str(len(results)))


def _provenance(value, hint):
    """--provenance as buildx takes it: true, false, or attributes (mode=max,…) -> True,
    False, the attributes, or None when not given."""
    if value is None:
        return None
    low = value.strip().lower()
    if low in ("true", "1"):
        return True
    if low in ("false", "0", ""):
        return False
    if not re.fullmatch(r"[a-z][a-z-]*=[^,=\s]+(,[a-z][a-z-]*=[^,=\s]+)*", value.strip()):
        raise click.BadParameter(f"'{value[:60]}' is not true, false or attributes like mode=max or "
                                 "mode=min,inline-only=true", param_hint=hint)
    return value.strip()


@cli.command()
@click.argument("results", nargs=-1, required=True, metavar="[FUNCTION=]RESULT...")
@click.option("--env", "env", required=True, callback=env_name, help="Environment to pin in.")
@click.option("--registry", metavar="REG", help="Registry prefix, as `fnops ship --registry` got it: the "
              "repository of a function without `image:` is REG/<name>. Required when one has none.")
@click.option("--plan", "plan_file", metavar="FILE", help="The plan the matrix was made from (`fnops ship --plan "
              "--output json`, or the action's `plan` output): only functions it lists are pinned.")
@click.option("--allow-older", is_flag=True, help="Pin even over a pin whose source is newer or unrelated.")
@APPROVED
@OUTPUT
@gitops_flags
def pin(results, env, registry, plan_file, allow_older, approved, output, **g):
    """Pin, in one commit, the images that `fnops ship --no-pin --output json` built — the
    last job of a matrix that built one function per job.

    RESULT is a file holding that output (or `{"functions": <its functions output>}`);
    FUNCTION=RESULT says it is the result of FUNCTION's job, and may pin FUNCTION only.
    Every result must record the commit being pinned ($GITHUB_SHA, else HEAD) and --env; a
    function comes from one result only, is a folder under --functions-dir, and its image
    is in the repository it declares (`image:`), else REG/<name>. Anything else: exit 2,
    nothing committed."""
    from ..delivery.detect import repo_root
    from ..delivery.matrix import read_plan, read_results
    from ..delivery.pins import PinOp
    from ..types import GitSha, Repository

    if registry is not None:
        try:
            registry = Repository(registry.rstrip("/"))
        except ValueError as e:
            raise click.BadParameter(str(e), param_hint="--registry") from None
    source = source_from_environment()
    try:
        commit = GitSha(source.commit or "")
    except ValueError:
        raise click.UsageError("no source commit to pin: run in a Git checkout or set GITHUB_SHA") from None
    plan = read_plan(plan_file, env=env, commit=commit) if plan_file else None
    built = read_results(results, env=env, commit=commit, root=repo_root(), functions_dir=g["functions_dir"],
                         registry=registry, plan=plan)
    if not built:
        click.echo("nothing to pin: no function was built")
        return
    mode = g["mode"]
    history = _history(g["gitops_repo"])
    # late_ok: a matrix that finishes after a newer run pinned newer code skips, not fails.
    ops = [PinOp(g["functions_dir"], b.function, env, "release", image=b.image, source=source, history=history,
                 allow_older=allow_older, unapproved_push=(mode or "push") == "push" and not approved, late_ok=True)
           for b in built]
    _publish(ops, g, why=f"Pin {len(ops)} function(s) built by a matrix.", output=output)


def _publish(ops, g, why, mode=None, output="text"):
    """Commit the ops; --mode wins, else the command's own default `mode`, else push."""
    import json as _json

    from ..delivery import commits

    branch = resolve_branch(g["branch"])
    url = g["gitops_repo"]
    # The token goes to git through its environment (also for this repository's own remote,
    # so checkouts can keep persist-credentials: false).
    sha, changes, pr = commits.commit_pins(ops, repo=None if url else ".", url=url, branch=branch,
                                           token=token_from(g["token_env"], url), why=why,
                                           mode=g["mode"] or mode or "push", github_repo=g["github_repo"])
    skipped = [{"function": op.name, "environment": op.env, "why": op.outcome} for op in ops if op.outcome]
    if output == "json":
        click.echo(_json.dumps({"functions": [change_row(c) for c in changes], "commit": sha, "pullRequest": pr,
                                "dryRun": False, "skipped": skipped}, sort_keys=True))
    else:
        for s in skipped:
            if s["why"] == "pinned-newer":  # a late matrix run: newer code is pinned, not a failure
                notice(f"{s['function']} [{s['environment']}] skipped: pinned-newer")
        report(sha, changes, pr)
    write_outputs(commit=sha or "", **{"pr-url": pr or ""})


def change_row(c) -> dict:
    """One pin change, in the shape family of `ship --output json`'s functions."""
    from ..types import PinnedImage

    ref = PinnedImage.parse(str(c.image))
    return {"function": c.function, "environment": c.environment, "action": c.action, "image": str(c.image),
            "digest": str(ref.digest), "previousImage": str(c.previous_image) if c.previous_image else None,
            "sourceCommit": (c.source or {}).get("commit"), "rollbackOf": c.rollback_of, "pushed": True}


@cli.command()
@click.option("--functions-dir", default="functions", show_default=True)
@click.option("--gitops-repo", metavar="URL", help="Read this repository (cloned) instead of the current folder.")
@click.option("--branch", default="main", show_default=True, help="Branch of --gitops-repo to read.")
@click.option("--token-env", default="GITOPS_TOKEN", show_default=True, metavar="VAR")
@click.option("--output", type=click.Choice(["text", "json"]), default="text", show_default=True)
def status(functions_dir, gitops_repo, branch, token_env, output):
    """Table of functions × environments: what is pinned where."""
    import json as _json

    from ..delivery.status import collect, table

    if gitops_repo:
        from ..delivery.gitops import scratch_tree

        with scratch_tree(None, gitops_repo, branch, token_from(token_env, gitops_repo)) as tree:
            rows = collect(tree.cwd, functions_dir)
    else:
        if not os.path.isdir(functions_dir):
            raise click.UsageError(f"{functions_dir}: no such folder (set --functions-dir)")
        history = _history()
        head = None
        if history is not None:
            import subprocess

            p = subprocess.run(["git", "rev-parse", "HEAD"], cwd=history.root, capture_output=True, text=True)
            head = p.stdout.strip() or None
        rows = collect(".", functions_dir, history, head)
    click.echo(_json.dumps(rows, sort_keys=True) if output == "json" else table(rows))




def report(sha, changes, pr=None) -> None:
    from ..delivery.pins import short

    if sha is None:
        click.echo("nothing to commit: the pin is already up to date")
        return
    for c in changes:
        click.echo(f"{c.action} {c.function} [{c.environment}] -> {short(c.image)}")
    click.echo(f"pushed {sha}")
    if pr:
        click.echo(f"pull request: {pr}")
