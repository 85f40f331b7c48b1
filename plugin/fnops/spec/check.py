"""A small checker that walks a loaded document and records precise problems.

Each check names the field by its dotted path and says what would be valid; unknown keys
get a "did you mean". Checks return a usable value (or None) so one pass reports every
problem in the file instead of stopping at the first.
"""

from __future__ import annotations

import math

from ..errors import Problem, SpecError
from ..yamldoc import Doc
from .limits import MAX_PROBLEMS
from .units import shown

_TYPE_NAMES = {str: "a string", int: "a whole number", bool: "true or false", dict: "a mapping", list: "a list"}


def dotted(path) -> str:
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{shown(p)}" if out else shown(p))
    return out or "(document)"


class Checker:
    def __init__(self, doc: Doc):
        self.doc = doc
        self.problems: list[Problem] = []
        self.untold = 0  # problems past MAX_PROBLEMS: counted, not formatted

    @property
    def full(self) -> bool:
        return len(self.problems) >= MAX_PROBLEMS

    def fail(self, path, message: str, *, key: bool = False) -> None:
        if self.full:
            self.untold += 1
            return
        self.problems.append(self.doc.problem(path, f"{dotted(path)}: {message}", key=key))

    def all_problems(self) -> list[Problem]:
        """Every problem, or the first MAX_PROBLEMS and a line that counts the rest: a folder
        of ten thousand typos costs one bounded report, not ten thousand suggestions."""
        out = unique(self.problems)
        if self.untold:
            out.append(Problem(self.doc.path, 1, 1,
                               f"… and {self.untold} more problems (the first {MAX_PROBLEMS} are shown)"))
        return out

    def raise_if_any(self) -> None:
        if self.problems:
            raise SpecError(self.all_problems())

    def mapping(self, path, value, allowed) -> dict:
        """`value` must be a mapping whose keys are all in `allowed`."""
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.fail(path, f"expected a mapping with keys {', '.join(allowed)}")
            return {}
        for k in value:
            if k not in allowed:
                self.fail(tuple(path) + (k,), "unknown key" + ("" if self.full else _suggest(k, allowed)), key=True)
        return value

    def typed(self, path, value, want):
        """`value` of Python type `want` (bool is never an int), else a problem and None."""
        if value is None:
            return None
        ok = isinstance(value, want) and not (want in (int, float, (int, float)) and isinstance(value, bool))
        if not ok:
            name = _TYPE_NAMES.get(want, "a number")
            self.fail(path, f"expected {name}, got {_show(value)}")
            return None
        return value

    def choice(self, path, value, choices):
        if value is None:
            return None
        if value not in choices:
            self.fail(path, f"'{shown(value)}' is not one of {', '.join(choices)}{_suggest(str(value), choices, list_all=False)}")
            return None
        return value

    def integer(self, path, value, lo=None, hi=None):
        return self._ranged(path, value, int, lo, hi)

    def number(self, path, value, lo=None, hi=None):
        return self._ranged(path, value, (int, float), lo, hi)

    def _ranged(self, path, value, want, lo, hi):
        v = self.typed(path, value, want)
        if v is None:
            return None
        if isinstance(v, float) and not math.isfinite(v):  # YAML's .nan and .inf are floats too
            self.fail(path, f"{v} is not a finite number; allowed {_range(lo, hi)}")
            return None
        if (lo is not None and v < lo) or (hi is not None and v > hi):
            self.fail(path, f"{v} is out of range; allowed {_range(lo, hi)}")
            return None
        return v

    def parsed(self, path, value, parser, *args):
        """Run a units parser; its ValueError message becomes the problem."""
        if value is None:
            return None
        try:
            return parser(value, *args)
        except ValueError as e:
            self.fail(path, str(e))
            return None

    def string_list(self, path, value, *, non_empty=False, most=None, what="entries"):
        """A list of non-empty strings (a lone string is a list of one), of at most `most`."""
        if value is None:
            if non_empty:
                self.fail(path, "is required: a non-empty list of strings")
            return ()
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(x, str) and x for x in value):
            self.fail(path, "expected a list of non-empty strings")
            return ()
        if non_empty and not value:
            self.fail(path, "must not be empty")
        if not self.at_most(path, value, most, what):
            return ()
        return tuple(value)

    def at_most(self, path, items, most, what: str) -> bool:
        """False, with a problem, when `items` has more than `most` entries."""
        if most is not None and len(items) > most:
            self.fail(path, f"{len(items)} {what}; at most {most}")
            return False
        return True


def _range(lo, hi) -> str:
    if lo is not None and hi is not None:
        return f"{lo}–{hi}"
    return f"≥ {lo}" if lo is not None else f"≤ {hi}"


def _show(value) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return repr(value) if not isinstance(value, str) else f"'{shown(value)}'"


def _suggest(word: str, choices, list_all: bool = True) -> str:
    import difflib  # error path only: keep it off render's start-up

    if len(str(word)) > 64:  # nothing that long is a typo of a key
        return f"; valid keys: {', '.join(choices)}" if list_all and len(choices) <= 20 else ""
    close = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1, cutoff=0.6)
    if close:
        return f"; did you mean '{close[0]}'?"
    if list_all and len(choices) <= 20:
        return f"; valid keys: {', '.join(choices)}"
    return ""


def unique(problems):
    seen, out = set(), []
    for p in problems:
        if p not in seen:
            seen.add(p)
            out.append(p)
    return out
