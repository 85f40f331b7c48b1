"""`fnops bridge …`: serve the notifications bridge, check its config."""

from __future__ import annotations

import sys

import click

from .group import cli


@cli.group()
def bridge():
    """The notifications bridge: Argo CD + Alertmanager -> Slack, GitHub, Git audit, rollback."""


@bridge.command("serve")
@click.option("--config", "config_path", required=True, type=click.Path(dir_okay=False), help="Bridge config (YAML).")
def bridge_serve(config_path):
    """Run the bridge (HTTP ingress + durable outbox worker)."""
    from ..bridge.server import serve

    serve(config_path)


@bridge.command("check-config")
@click.argument("config_path", type=click.Path(dir_okay=False))
def bridge_check_config(config_path):
    """Validate a bridge config, including that the environment variables it names are set."""
    from ..bridge.config import check

    problems = check(config_path)
    for p in problems:
        click.echo(str(p), err=True)
    if problems:
        sys.exit(2)
    click.echo(f"{config_path}: ok")
