"""Errors that know their exit code and how to print themselves.

Exit codes are a contract (DESIGN.md): 0 ok, 1 failure, 2 usage or invalid input.
This module is imported on the render path, so it imports nothing heavy.
"""

from __future__ import annotations

import sys
from collections import namedtuple


class FnopsError(Exception):
    """Base class: a failure the user can act on. Printed as one line, no traceback."""

    exit_code = 1

    def format(self) -> str:
        return f"fnops: {self}"

    def show(self, file=None) -> None:
        print(self.format(), file=file or sys.stderr)


class UsageError(FnopsError):
    """Wrong flags or arguments."""

    exit_code = 2


class TemporaryError(FnopsError):
    """Worth retrying (network blip, push race, 5xx, 429). `retry_after`: seconds the
    other side asked us to wait, if it said."""

    def __init__(self, message: str = "", retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


class PermanentError(FnopsError):
    """Retrying will not help (bad token, 4xx, genuine conflict)."""


class Problem(namedtuple("Problem", "path line col message")):
    """One invalid thing in one file, with where it is."""

    __slots__ = ()

    def __str__(self) -> str:
        # One line, whatever a folder name or a value held: a newline could forge a second
        # error, or a GitHub Actions workflow command in a CI log.
        from .escape import printable

        return f"{printable(self.path)}:{self.line}:{self.col}: {printable(self.message)}"


class SpecError(FnopsError):
    """Invalid input files: one line per problem, `path:line:col: message`."""

    exit_code = 2

    def __init__(self, problems: list[Problem]):
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))

    def format(self) -> str:
        return "\n".join(str(p) for p in self.problems)
