"""The fnops command line (click). Exit codes: 0 ok, 1 failure, 2 usage or invalid input.

One module per surface; each command parses, calls one function, prints."""

from __future__ import annotations

from . import authoring, bridge, delivery  # noqa: F401  (register their commands)
from .group import cli

__all__ = ["cli", "main"]


def main(argv=None) -> int:
    try:
        cli.main(args=argv, prog_name="fnops", standalone_mode=True)
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    return 0
