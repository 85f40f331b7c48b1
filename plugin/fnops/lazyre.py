"""Regular expressions compiled on first use.

Module-level `re.compile` of every pattern cost `fnops render` several milliseconds of
start-up for patterns most runs never reach.
"""

from __future__ import annotations

import re


class LazyRe:
    __slots__ = ("pattern", "_compiled")

    def __init__(self, pattern: str):
        self.pattern = pattern
        self._compiled = None

    def _re(self):
        if self._compiled is None:
            self._compiled = re.compile(self.pattern)
        return self._compiled

    def fullmatch(self, s: str):
        return self._re().fullmatch(s)

    def finditer(self, s: str):
        return self._re().finditer(s)
