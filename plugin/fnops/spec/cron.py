"""Cron schedules as the two parsers that read fnops' renders take them: robfig/cron v3,
which Knative's PingSource validates with (five fields, seconds optional, @ macros but
`@every`: knative/eventing pkg/apis/sources/v1/ping_validation.go) and KEDA's cron scaler
runs (five fields, no macros at all: kedacore/keda pkg/scalers/cron_scaler.go).

fnops takes the five-field form both accept. Each check returns a message naming what is
wrong and what would do, or None."""

from __future__ import annotations

from .units import shown

# robfig/cron's descriptors (its parser's Descriptor option) and their five-field spelling.
MACROS = {"@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *", "@weekly": "0 0 * * 0",
          "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *"}
_MONTHS = {m: i for i, m in enumerate(("jan feb mar apr may jun jul aug sep oct nov dec").split(), 1)}
_DAYS = {d: i for i, d in enumerate(("sun mon tue wed thu fri sat").split())}
# (name, lowest, highest, names): robfig's bounds, day-of-week 0–6 (7 is refused there).
FIELDS = (("minute", 0, 59, None), ("hour", 0, 23, None), ("day-of-month", 1, 31, None),
          ("month", 1, 12, _MONTHS), ("day-of-week", 0, 6, _DAYS))
SYNTAX = ("minute hour day-of-month month day-of-week; numbers, ranges a-b, steps /n, lists a,b, * or ?, "
          "month names JAN–DEC, day names SUN–SAT")


def pingsource_error(text: str) -> str | None:
    """What Knative's PingSource would refuse in `text`."""
    if text.startswith("@"):
        if text.startswith("@every"):
            return (f"'{shown(text)}': Knative's PingSource refuses @every (eventing's webhook: unsupported "
                    "descriptor); write a 5-field schedule, e.g. */5 * * * * for every five minutes")
        if text not in MACROS:
            return f"'{shown(text)}' is not a cron macro ({', '.join(MACROS)}) nor a 5-field schedule ({SYNTAX})"
        return None
    return fields_error(text)


def keda_error(text: str) -> str | None:
    """What KEDA's cron scaler would fail to parse in `text`."""
    if text.startswith("@"):
        hint = f"; {text} is {MACROS[text]}" if text in MACROS else ""
        return (f"'{shown(text)}': KEDA's cron scaler takes 5-field schedules only, no @ macros or @every "
                f"({SYNTAX}){hint}")
    return fields_error(text)


def fields_error(text: str) -> str | None:
    fields = text.split()
    if len(fields) != 5:
        return f"'{shown(text)}' is not a 5-field cron schedule ({SYNTAX})"
    for value, (name, lo, hi, names) in zip(fields, FIELDS):
        for expr in value.split(","):
            why = _expr_error(expr, lo, hi, names)
            if why:
                return f"'{shown(text)}': {name} '{shown(expr)}' {why} ({SYNTAX})"
    return None


def _expr_error(expr: str, lo: int, hi: int, names) -> str | None:
    """robfig/cron's getRange, minus the forms it reads oddly ('*-5' is '*')."""
    range_, slash, step = expr.partition("/")
    if "/" in step:
        return "has more than one '/'"
    if range_ in ("*", "?"):
        start, end = lo, hi
    else:
        low, dash, high = range_.partition("-")
        if "-" in high:
            return "has more than one '-'"
        start = _number(low, names)
        end = _number(high, names) if dash else start
        if start is None or end is None:
            bad = low if start is None else high
            if bad in ("L", "W") or "#" in bad or bad.endswith(("L", "W")):
                return "uses L, W or #, which Knative's and KEDA's cron parser (robfig/cron) do not know"
            return "is not a number" + (" or a name" if names else "")
        if slash:
            end = hi  # "5/15" is "5-<highest>/15"
    if slash:
        n = _number(step, None)
        if not n:
            return "has a step that is not a positive whole number"
    if not lo <= start <= end <= hi:
        return f"is outside {lo}–{hi}" if start < lo or end > hi else "starts after it ends"
    return None


def _number(text: str, names) -> int | None:
    if names and text.lower() in names:
        return names[text.lower()]
    if not text or len(text) > 4 or not all("0" <= ch <= "9" for ch in text):
        return None
    return int(text)
