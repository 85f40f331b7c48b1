"""Delivery commands: ship, bump, promote, rollback, status. Each parses, calls one
function of `fnops.delivery`, and prints."""

from __future__ import annotations

import os

import click

from ..delivery.origin import resolve_branch, source_from_environment, token_from
from .gha import write_outputs, write_step_summary
from .group import cli
from .options import env_name, gitops_flags


@cli.command()
@click.argument("function")
@click.option("--env", "env", required=True, callback=env_name, help="Environment whose pin to write.")
@click.option("--image", required=True, metavar="REF@sha256:…", help="Digest-pinned image reference.")
@click.option("--source-repo", help="Source repository (default: $GITHUB_REPOSITORY).")
@click.option("--source-commit", help="Source commit (default: $GITHUB_SHA, else HEAD).")
@click.option("--source-ref", help="Source ref (default: $GITHUB_REF).")
@click.option("--run-url", help="URL of the CI run that built the image.")
@gitops_flags
def bump(function, env, image, source_repo, source_commit, source_ref, run_url, **g):
    """Pin FUNCTION's image for ENV in releases/<env>.yaml, commit once and push."""
    from ..delivery.origin import Source
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
    src = Source(source_repo or src.repo, source_commit or src.commit, source_ref or src.ref, run_url or src.run)
    op = PinOp(g["functions_dir"], function, env, "release", image=ref, source=src)
    _publish([op], g, why=f"Release {ref.tag or ref.digest} of {function} to {env}.")


@cli.command()
@click.argument("function")
@click.option("--from", "from_env", required=True, callback=env_name, help="Environment to copy the pin from.")
@click.option("--to", "to_env", required=True, callback=env_name, help="Environment to write.")
@gitops_flags
def promote(function, from_env, to_env, **g):
    """Copy FUNCTION's pin from one environment to another."""
    from ..delivery.pins import PinOp

    if from_env == to_env:
        raise click.BadParameter("--from and --to name the same environment", param_hint="--to")
    op = PinOp(g["functions_dir"], function, to_env, "promote", from_env=from_env)
    mode = None  # --mode wins; otherwise environments with `approval: required` get a PR
    folder = os.path.join(g["functions_dir"], function)
    if g["mode"] is None and not g["gitops_repo"] and os.path.isfile(os.path.join(folder, "function.yaml")):
        from ..spec import load_function

        mode = "pr" if load_function(folder, to_env).approval == "required" else "push"
    _publish([op], g, why=f"Promote {function} from {from_env} to {to_env}.", mode=mode)


@cli.command()
@click.argument("function")
@click.option("--env", "env", required=True, callback=env_name, help="Environment to roll back.")
@click.option("--reason", help="Why (goes into the commit message).")
@gitops_flags
def rollback(function, env, reason, **g):
    """Restore the previous release pin of FUNCTION in ENV (never rolls back a rollback)."""
    from ..delivery.pins import PinOp

    op = PinOp(g["functions_dir"], function, env, "rollback")
    _publish([op], g, why=f"Rollback of {function} in {env}" + (f": {reason}" if reason else "."))


@cli.command()
@click.option("--env", "env", required=True, callback=env_name, help="Environment to pin the new images in.")
@click.option("--registry", metavar="REG", help="Registry prefix for functions without 'image' (e.g. ghcr.io/acme/functions).")
@click.option("--builder", "builder_name", type=click.Choice(["buildah", "docker"]), default="buildah", show_default=True)
@click.option("--since", metavar="GITREF", help="Ship functions changed since this commit (default: all).")
@click.option("--all", "every", is_flag=True, help="Ship every function, changed or not.")
@click.option("--base-image", metavar="REF", help="Base image for python runtimes (default python:<ver>-slim).")
@click.option("--dry-run", is_flag=True, help="Build everything, push and commit nothing.")
@click.option("--pin/--no-pin", default=True, show_default=True, help="Commit the pushed digests to releases/<env>.yaml.")
@click.option("--provenance", is_flag=True, help="docker builder: attach SLSA provenance attestations.")
@click.option("--sbom", is_flag=True, help="docker builder: attach an SBOM attestation.")
@click.option("--output", type=click.Choice(["text", "json"]), default="text", show_default=True)
@gitops_flags
def ship(env, registry, builder_name, since, every, base_image, dry_run, pin, provenance, sbom, output, **g):
    """Detect changed functions, build and push their images, pin the digests in one commit."""
    import json as _json

    from ..delivery.ship import ship as run_ship

    source = source_from_environment()
    url = g["gitops_repo"]
    if (provenance or sbom) and builder_name != "docker":
        raise click.BadParameter("attestations need --builder docker", param_hint="--provenance/--sbom")
    results, sha, pr = run_ship(env=env, registry=registry, functions_dir=g["functions_dir"], builder_name=builder_name,
                            since=since, every=every, base_image=base_image, dry_run=dry_run, gitops_repo=url,
                            branch=resolve_branch(g["branch"]), token=token_from(g["token_env"]),
                            source=source, pin=pin, mode=g["mode"] or "push", github_repo=g["github_repo"],
                            builder_options={"provenance": provenance, "sbom": sbom} if builder_name == "docker" else {})
    rows = [r._asdict() for r in results]
    summary = {"functions": rows, "commit": sha, "dryRun": dry_run, "pullRequest": pr}
    if output == "json":
        click.echo(_json.dumps(summary, sort_keys=True))
    else:
        for r in results:
            click.echo(f"{r.function} [{r.environment}] {r.image}" + ("" if r.pushed else " (not pushed)"))
        click.echo(f"pinned in {sha}" if sha else "nothing pinned")
    write_step_summary(results, sha, env)
    write_outputs(functions=_json.dumps(rows, sort_keys=True), commit=sha or "", **{"pr-url": pr or ""})


def _publish(ops, g, why, mode=None):
    """Commit the ops; --mode wins, else the command's own default `mode`, else push."""
    from ..delivery import commits

    branch = resolve_branch(g["branch"])
    url = g["gitops_repo"]
    # The token goes to git through its environment (also for this repository's own remote,
    # so checkouts can keep persist-credentials: false).
    sha, changes, pr = commits.commit_pins(ops, repo=None if url else ".", url=url, branch=branch,
                                    token=token_from(g["token_env"]), why=why, mode=g["mode"] or mode or "push",
                                    github_repo=g["github_repo"])
    report(sha, changes, pr)
    write_outputs(commit=sha or "", **{"pr-url": pr or ""})


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

        with scratch_tree(None, gitops_repo, branch, token_from(token_env)) as tree:
            rows = collect(tree.cwd, functions_dir)
    else:
        if not os.path.isdir(functions_dir):
            raise click.UsageError(f"{functions_dir}: no such folder (set --functions-dir)")
        rows = collect(".", functions_dir)
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
