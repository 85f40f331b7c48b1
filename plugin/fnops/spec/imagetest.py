"""function.yaml `test:` — a command `fnops ship` runs inside the image it has just built,
before anything is pushed:

    test:
      command: [python, -m, unittest, discover, -s, tests]   # or one string, split like a shell
      timeout: 10m                                          # optional; default 10m, at most 1h

The command runs as an argv, never through a shell: a string is split with shlex (quotes
group words; no pipes, globs or variables), so what runs is exactly what the plan shows.
"""

from __future__ import annotations

from . import units
from .check import Checker
from .model import TEST_TIMEOUT_DEFAULT, TEST_TIMEOUT_MAX, ImageTest
from .units import shown

TEST_KEYS = ("command", "timeout")
MAX_ARGS = 256  # a command line, not a script: a longer one belongs in a file in the image


def image_test(c: Checker, value, runtime: str | None) -> ImageTest | None:
    """The checked `test:` mapping, or None (absent or invalid; problems recorded in `c`)."""
    if value is None:
        return None
    p = ("test",)
    if not isinstance(value, dict):
        c.fail(p, "expected a mapping with keys command (a list of strings, or one string split like a shell) "
               "and optionally timeout (e.g. 10m)")
        return None
    t = c.mapping(p, value, TEST_KEYS)
    command = _command(c, p + ("command",), t.get("command"))
    timeout = c.parsed(p + ("timeout",), t.get("timeout"), units.whole_seconds, 1, TEST_TIMEOUT_MAX)
    if runtime == "image":
        c.fail(p, "runtime 'image' builds nothing, so there is no image to test; test the image where it is "
               "built, or remove 'test'")
        return None
    if command is None:
        return None
    return ImageTest(command, TEST_TIMEOUT_DEFAULT if timeout is None else timeout)


def _command(c: Checker, p, value) -> tuple | None:
    example = "e.g. [python, -m, unittest] or \"python -m unittest\""
    if value is None:
        c.fail(p, f"is required: the command to run inside the built image, {example}")
        return None
    if isinstance(value, str):
        import shlex  # only folders that write the string form pay for it

        try:
            args = shlex.split(value, comments=False, posix=True)
        except ValueError as e:  # "No closing quotation", "No escaped character"
            c.fail(p, f"'{shown(value)}' cannot be split into words ({str(e).lower()}); close the quote, or "
                   f"write a list, {example}")
            return None
        if not args:
            c.fail(p, f"is empty; the command to run inside the built image, {example}")
            return None
    elif isinstance(value, list):
        if not value:
            c.fail(p, f"is empty; the command to run inside the built image, {example}")
            return None
        bad = [i for i, a in enumerate(value) if not isinstance(a, str) or not a]
        if bad:
            # Numbers too: YAML reads `-s 1` as an int, and quoting says which text is meant.
            c.fail(p + (bad[0],), f"expected a non-empty string, got {shown(value[bad[0]])}; quote it "
                   "(every word of the command is a string)")
            return None
        args = value
    else:
        c.fail(p, f"expected a list of strings or one string, {example}")
        return None
    if not c.at_most(p, args, MAX_ARGS, "words"):
        return None
    for i, a in enumerate(args):
        if "\x00" in a:  # no argv can carry it
            c.fail(p + (i,) if isinstance(value, list) else p, "contains a NUL character, which no command line "
                   "can hold")
            return None
    return tuple(args)
