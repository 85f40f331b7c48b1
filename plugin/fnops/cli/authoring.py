"""Authoring commands: new, validate, render."""

from __future__ import annotations

import os
import sys

import click

from ..errors import SpecError
from .gha import annotate
from .group import cli


@cli.command()
@click.argument("path", type=click.Path(file_okay=False))
@click.option("--env", "env", metavar="ENV", help="Environment to render. Default: $ARGOCD_ENV_FNOPS_ENV.")
def render(path, env):
    """Render a function folder to Kubernetes manifests on stdout (the Argo CD CMP generate).

    The namespace comes from $ARGOCD_APP_NAMESPACE when set.
    """
    from ..render.cmp import run

    code = run(path, env)
    if code:
        sys.exit(code)


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path())
def validate(paths):
    """Check function folders (and folders of them); print `path:line:col: message` per problem."""
    from ..spec import validate_folder
    from ..spec.discover import function_folders

    folders = function_folders(paths or ["."])
    if not folders:
        raise click.UsageError(f"no function.yaml found under {', '.join(paths or ['.'])}")
    bad = 0
    for folder in folders:
        problems = validate_folder(folder)
        if problems:
            bad += 1
            for p in problems:
                click.echo(str(p), err=True)
            annotate(SpecError(problems))
    ok = len(folders) - bad
    click.echo(f"{len(folders)} function(s) checked: {ok} ok, {bad} with problems", err=True)
    if bad:
        sys.exit(2)


@cli.command()
@click.argument("name")
@click.option("--runtime", default="python3.12", show_default=True,
              type=click.Choice(["python3.11", "python3.12", "python3.13", "dockerfile", "image"]))
@click.option("--dir", "directory", default="functions", show_default=True, type=click.Path(file_okay=False),
              help="Folder that holds the function folders.")
def new(name, runtime, directory):
    """Scaffold a function folder that validates (and renders once its first release is pinned)."""
    from ..spec.scaffold import scaffold

    folder = scaffold(name, runtime, directory)
    click.echo(f"created {folder}")
    click.echo(f"next: edit {os.path.join(folder, 'function.yaml')}, then `fnops validate {folder}`")
