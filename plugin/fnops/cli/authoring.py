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


@cli.command()
@click.argument("function")
@click.option("--env", "env", default=None, help="Environment whose overlay applies (default: none).")
@click.option("--functions-dir", default="functions", show_default=True, help="Folder of function folders.")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(1, 65535))
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--reload/--no-reload", default=True, show_default=True, help="Restart when the folder changes.")
def run(function, env, functions_dir, port, host, reload):
    """Serve FUNCTION (a name under --functions-dir, or a folder) locally with the server its
    image uses, its env: and overlays applied; restart on every change."""
    from ..local.run import serve

    sys.exit(serve(_folder(function, functions_dir), env, port, host, reload, say=lambda m: click.echo(m, err=True)))


@cli.command()
@click.argument("function", required=False)
@click.option("--data", "data", metavar="JSON|@FILE", help="The body (JSON by default); @path reads a file.")
@click.option("--cloudevent", "ce_type", metavar="TYPE", help="Send a CloudEvent of this type (binary mode).")
@click.option("--structured", is_flag=True, help="With --cloudevent: structured mode (application/cloudevents+json).")
@click.option("--source", default="fnops/invoke", show_default=True, help="The CloudEvent source.")
@click.option("--content-type", default="application/json", show_default=True)
@click.option("--port", default=8080, show_default=True, type=click.IntRange(1, 65535))
@click.option("--url", help="Invoke this URL instead of http://127.0.0.1:PORT/.")
def invoke(function, data, ce_type, structured, source, content_type, port, url):
    """Send FUNCTION (served by `fnops run`) a request or a CloudEvent; print the answer."""
    from ..local.invoke import request

    if structured and not ce_type:
        raise click.BadParameter("--structured needs --cloudevent TYPE", param_hint="--structured")
    if data and data.startswith("@"):
        with open(data[1:], encoding="utf-8") as f:
            data = f.read()
    status, ctype, body = request(url or f"http://127.0.0.1:{port}/", data, ce_type, structured, source, content_type)
    click.echo(body.decode("utf-8", "replace"))
    if status >= 400:
        click.echo(f"fnops: the function answered {status}", err=True)
        sys.exit(1)


def _folder(function: str, functions_dir: str) -> str:
    """A function name (a DNS label) under functions_dir, or a path to a folder."""
    from ..spec.units import is_dns1035

    if os.path.isdir(function) and os.path.isfile(os.path.join(function, "function.yaml")):
        return function
    if not is_dns1035(function):
        raise click.BadParameter(f"'{function[:60]}' is neither a function folder nor a function name",
                                 param_hint="FUNCTION")
    folder = os.path.join(functions_dir, function)
    if not os.path.isfile(os.path.join(folder, "function.yaml")):
        raise click.BadParameter(f"no function '{function}' under {functions_dir}/ (set --functions-dir)",
                                 param_hint="FUNCTION")
    return folder
