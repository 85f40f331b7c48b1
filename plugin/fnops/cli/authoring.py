"""Authoring commands: new, validate, render."""

from __future__ import annotations

import os
import re
import sys

import click

from ..errors import SpecError
from .gha import annotate
from .group import cli


@cli.command()
@click.argument("path", type=click.Path(file_okay=False))
@click.option("--env", "env", metavar="ENV", help="Environment to render. Default: $ARGOCD_ENV_FNOPS_ENV.")
@click.option("--preview", is_flag=True, help="Render before the first ship: the image is --image, or a placeholder "
              "that cannot be pulled, never the pin; every object is annotated fnops.dev/preview. Refused inside "
              "Argo CD.")
@click.option("--image", "image", metavar="REF@sha256:…", help="With --preview: the image to render.")
def render(path, env, preview, image):
    """Render a function folder to Kubernetes manifests on stdout (the Argo CD CMP generate).

    The namespace comes from $ARGOCD_APP_NAMESPACE when set. Without --preview, the image
    is the pin in releases/<env>.yaml, and there must be one.
    """
    if image and not preview:
        raise click.BadParameter("--image is for --preview; a render without it uses the pin in releases/<env>.yaml",
                                 param_hint="--image")
    if preview:
        from ..render.cmp import preview_text

        text = preview_text(path, env, image)
        click.echo(text, nl=False)
        click.echo("fnops: preview only: this is not what Argo CD renders (it renders the pin in "
                   "releases/<env>.yaml)", err=True)
        return
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
    from ..spec.domain_conflicts import conflicts as domain_conflicts

    folders = function_folders(paths or ["."])
    if not folders:
        raise click.UsageError(f"no function.yaml found under {', '.join(paths or ['.'])}")
    bad_folders: set = set()
    for folder in folders:
        problems = validate_folder(folder)
        if problems:
            bad_folders.add(folder)
            for p in problems:
                click.echo(str(p), err=True)
            annotate(SpecError(problems))
    # What no single folder shows: two of them mapping one domain.
    clashes = domain_conflicts(folders)
    for p in clashes:
        bad_folders.add(os.path.dirname(p.path))
        click.echo(str(p), err=True)
    if clashes:
        annotate(SpecError(clashes))
    bad = len(bad_folders)
    ok = len(folders) - bad
    click.echo(f"{len(folders)} function(s) checked: {ok} ok, {bad} with problems", err=True)
    if bad:
        sys.exit(2)


@cli.command()
@click.argument("name")
@click.option("--runtime", default="python3.12", show_default=True,
              type=click.Choice(["python3.11", "python3.12", "python3.13", "node20", "node22", "node24", "node26",
                                 "dockerfile", "image"]))
@click.option("--template", default="http", show_default=True, type=click.Choice(["http", "cloudevents"]),
              help="http: answers requests; cloudevents: takes events from a broker and replies with one "
                   "(python and node runtimes).")
@click.option("--dir", "directory", default="functions", show_default=True, type=click.Path(file_okay=False),
              help="Folder that holds the function folders.")
def new(name, runtime, template, directory):
    """Scaffold a function folder that validates (and renders once its first release is pinned)."""
    from ..spec.scaffold import scaffold

    folder = scaffold(name, runtime, directory, template)
    click.echo(f"created {folder}")
    click.echo(f"next: edit {os.path.join(folder, 'function.yaml')}, then `fnops validate {folder}`"
               + (f" and `fnops run {folder}`" if runtime != "image" else ""))


def _overlay(ctx, param, value):
    """--env names an overlay; NAME=VALUE is what -e is for."""
    if value is not None and "=" in value:
        raise click.BadParameter(f"'{value[:60]}' looks like a variable: --env names an environment overlay "
                                 f"(an `environments:` key); for a variable use -e {value[:60]} or --env-file FILE",
                                 param_hint="--env")
    from .options import env_name

    return env_name(ctx, param, value)


@cli.command()
@click.argument("function")
@click.option("--env", "env", default=None, callback=_overlay, metavar="ENV",
              help="Environment whose overlay applies (one the function declares; default: none).")
@click.option("-e", "--var", "variables", multiple=True, metavar="NAME=VALUE",
              help="A variable for this run only (repeatable); wins over env: and --env-file.")
@click.option("--env-file", type=click.Path(dir_okay=False), metavar="FILE",
              help="Variables for this run from a dotenv file (NAME=VALUE lines); re-read on every restart.")
@click.option("--functions-dir", default="functions", show_default=True, help="Folder of function folders.")
@click.option("--port", default=None, type=click.IntRange(0, 65535),
              help="Port to listen on; taken: an error. Default: 8080, or a free one (printed) when 8080 is taken. "
                   "0: a free one.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--reload/--no-reload", default=True, show_default=True, help="Restart when the folder changes.")
def run(function, env, variables, env_file, functions_dir, port, host, reload):
    """Serve FUNCTION (a name under --functions-dir, or a folder) locally with the server its
    image uses, its env: and overlay applied; restart on every change.

    A reload starts the new server before the old one stops (no refused connection); one
    that does not start is reported and the old one keeps serving. With --no-reload, a
    server that stops ends `fnops run` with exit 1. `fnops invoke FUNCTION` finds it."""
    from ..local.run import serve, variable

    pairs = dict(variable(v, "-e") for v in variables)
    sys.exit(serve(_folder(function, functions_dir), env, port, host, reload, say=lambda m: click.echo(m, err=True),
                   variables=pairs, env_file=env_file))


@cli.command()
@click.argument("function", required=False)
@click.option("--data", "data", metavar="TEXT|@FILE", help="The body: text as given (JSON by default), @FILE a file's "
              "bytes (any: binary too), @- standard input.")
@click.option("--cloudevent", "ce_type", metavar="TYPE", help="Send a CloudEvent of this type (binary mode).")
@click.option("--structured", is_flag=True, help="With --cloudevent: structured mode (application/cloudevents+json).")
@click.option("--source", default="fnops/invoke", show_default=True, help="The CloudEvent source.")
@click.option("--id", "event_id", metavar="ID", help="The CloudEvent id (default: a new UUID).")
@click.option("--content-type", default=None, help="Default: application/json; for @FILE what its name says, else "
              "JSON, text or application/octet-stream by its content.")
@click.option("-X", "--method", default=None, metavar="METHOD",
              help="HTTP method. Default: POST with a body or a CloudEvent, else GET.")
@click.option("-H", "--header", "headers", multiple=True, metavar="'NAME: VALUE'", help="A request header (repeatable).")
@click.option("--path", default=None, metavar="/PATH", help="Request path (a ?query too). Default: /.")
@click.option("--query", multiple=True, metavar="NAME=VALUE", help="A query parameter (repeatable).")
@click.option("--port", default=None, type=click.IntRange(1, 65535),
              help="Invoke the server on this port of 127.0.0.1 (with FUNCTION: must be where it is served).")
@click.option("--url", help="Invoke this URL instead of a function `fnops run` serves.")
@click.option("--timeout", default=30.0, show_default=True, type=click.FloatRange(0.1, 3600), help="Seconds to wait.")
def invoke(function, data, ce_type, structured, source, event_id, content_type, method, headers, path, query, port,
           url, timeout):
    """Send FUNCTION (served by `fnops run`; the only one served when left out) a request
    or a CloudEvent; print the answer. A CloudEvent reply's attributes go to stderr.

    On a terminal the answer's control characters (but newline and tab) are shown as
    escapes, so it cannot drive the terminal; a pipe or a file gets its exact bytes."""
    from ..local.invoke import (find, parse_headers, read_data, reply_cloudevent, request, sniff, target,
                                write_answer, write_attributes)

    if structured and not ce_type:
        raise click.BadParameter("--structured needs --cloudevent TYPE", param_hint="--structured")
    if url and (function or port):
        raise click.BadParameter("--url addresses a server itself: leave FUNCTION and --port out", param_hint="--url")
    if method is not None and not re.fullmatch(r"[A-Za-z]{1,20}", method):
        raise click.BadParameter(f"'{method[:30]}' is not an HTTP method (GET, POST, PUT, …)", param_hint="--method")
    pairs = parse_headers(headers)
    body, guessed = read_data(data)
    if content_type is None and data is not None and data.startswith("@"):
        content_type = guessed or sniff(body)
    base = url or find(function, port, wait=timeout)
    status, reply_headers, out = request(target(base, path, query), body, ce_type, structured, source, content_type,
                                         timeout=timeout, method=method.upper() if method else None, headers=pairs,
                                         event_id=event_id)
    attrs = reply_cloudevent(reply_headers, out)
    if attrs is not None:
        write_attributes(attrs)
    write_answer(out)
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
