"""The fnops command line (click). Exit codes: 0 ok, 1 failure, 2 usage or invalid input."""

from __future__ import annotations

import os
import sys

import click

from .errors import FnopsError


class FnopsGroup(click.Group):
    """Turns FnopsError into its one-line message and exit code, never a traceback."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except FnopsError as e:
            click.echo(e.format(), err=True)
            ctx.exit(e.exit_code)


@click.group(cls=FnopsGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="fnops")
def cli():
    """Serverless GitOps: function folders → images, pins, manifests and release news."""


@cli.command()
@click.argument("path", type=click.Path(file_okay=False))
@click.option("--env", "env", metavar="ENV", help="Environment to render. Default: $ARGOCD_ENV_FNOPS_ENV.")
def render(path, env):
    """Render a function folder to Kubernetes manifests on stdout (the Argo CD CMP generate).

    The namespace comes from $ARGOCD_APP_NAMESPACE when set.
    """
    from .rendering import run

    code = run(path, env)
    if code:
        sys.exit(code)


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path())
def validate(paths):
    """Check function folders (and folders of them); print `path:line:col: message` per problem."""
    from .discover import function_folders
    from .spec import validate_folder

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
    from .scaffold import scaffold

    folder = scaffold(name, runtime, directory)
    click.echo(f"created {folder}")
    click.echo(f"next: edit {os.path.join(folder, 'function.yaml')}, then `fnops validate {folder}`")


def main(argv=None) -> int:
    try:
        cli.main(args=argv, prog_name="fnops", standalone_mode=True)
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    return 0
