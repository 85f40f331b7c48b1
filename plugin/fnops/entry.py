"""Console entry point.

`fnops render` runs once per app per commit inside Argo CD, so it skips click entirely:
the common invocation (`render PATH [--env ENV]`) is parsed here and everything else —
help, other commands, unusual flags — goes through the click CLI.
"""

from __future__ import annotations

import sys


def _fast_render_args(args: list[str]):
    if not args or args[0] != "render":
        return None
    path, env, rest = None, None, args[1:]
    i = 0
    while i < len(rest):
        a = rest[i]
        if a == "--env" and i + 1 < len(rest):
            env, i = rest[i + 1], i + 2
        elif a.startswith("--env="):
            env, i = a[len("--env="):], i + 1
        elif not a.startswith("-") and path is None:
            path, i = a, i + 1
        else:
            return None  # let click explain
    if path is None:
        return None
    return path, env


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    fast = _fast_render_args(args)
    if fast is not None:
        from .render.cmp import run

        return run(*fast)
    from .cli import main as cli_main

    return cli_main(args)


if __name__ == "__main__":
    sys.exit(main())
