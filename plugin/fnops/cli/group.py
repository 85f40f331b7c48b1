"""The `fnops` click group: FnopsError becomes its one-line message and exit code."""

from __future__ import annotations

import click

from ..errors import FnopsError
from .gha import annotate


class FnopsGroup(click.Group):
    """Turns FnopsError into its one-line message and exit code, never a traceback."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except FnopsError as e:
            click.echo(e.format(), err=True)
            annotate(e)
            ctx.exit(e.exit_code)


@click.group(cls=FnopsGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="fnops")
def cli():
    """Serverless GitOps: function folders → images, pins, manifests and release news."""
