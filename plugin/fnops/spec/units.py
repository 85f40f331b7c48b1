"""Parsers for the small value languages in function.yaml: durations, percents,
Kubernetes quantities and names. Each raises ValueError with a message that says what
would be valid."""

from __future__ import annotations

from ..lazyre import LazyRe

_DUR_PART = LazyRe(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
DNS1035 = LazyRe(r"[a-z]([-a-z0-9]*[a-z0-9])?")
DNS1123_LABEL = LazyRe(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
# k8s.io/apimachinery resource.Quantity, the forms people write.
_QUANTITY = LazyRe(r"[+]?(\d+(\.\d*)?|\.\d+)(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei|[eE][+-]?\d+)?")


def duration_seconds(value) -> float:
    """'300ms', '30s', '5m', '1h30m' (Go duration syntax, units ms/s/m/h) -> seconds."""
    if isinstance(value, bool) or not isinstance(value, str):
        raise ValueError(f"expected a duration such as 30s, 5m or 1h, got {value!r}")
    text = value.strip()
    if text == "0":
        return 0.0
    pos, total = 0, 0.0
    for m in _DUR_PART.finditer(text):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _UNIT_SECONDS[m.group(2)]
        pos = m.end()
    if pos != len(text) or not text:
        raise ValueError(f"'{value}' is not a duration (use e.g. 300ms, 30s, 5m, 1h30m)")
    return total


def whole_seconds(value, lo: int, hi: int) -> int:
    s = duration_seconds(value)
    if s != int(s):
        raise ValueError(f"'{value}' must be whole seconds")
    if not lo <= s <= hi:
        raise ValueError(f"'{value}' is out of range; allowed {_fmt_dur(lo)}–{_fmt_dur(hi)}")
    return int(s)


def _fmt_dur(seconds: int) -> str:
    if seconds and seconds % 3600 == 0:
        return f"{seconds // 3600}h"
    if seconds and seconds % 60 == 0:
        return f"{seconds // 60}m"
    return f"{seconds}s"


def prom_duration(value) -> str:
    """A duration as Prometheus writes it ('for: 5m')."""
    s = duration_seconds(value)
    if s <= 0 or s != int(s):
        raise ValueError(f"'{value}' must be a positive whole number of seconds, e.g. 5m")
    return _fmt_dur(int(s))


def percent(value) -> float:
    """'1%' or 1 or 0.5 -> percent as a number in (0, 100)."""
    if isinstance(value, bool):
        raise ValueError(f"expected a percentage such as 1% or 0.5%, got {value!r}")
    if isinstance(value, str):
        text = value.strip()
        if not text.endswith("%"):
            raise ValueError(f"'{value}' is not a percentage (write it like 1% or 0.5%)")
        try:
            num = float(text[:-1])
        except ValueError:
            raise ValueError(f"'{value}' is not a percentage (write it like 1% or 0.5%)") from None
    elif isinstance(value, (int, float)):
        num = float(value)
    else:
        raise ValueError(f"expected a percentage such as 1%, got {value!r}")
    if not 0 < num < 100:
        raise ValueError(f"'{value}' must be between 0% and 100% (exclusive)")
    return num


def quantity(value) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ValueError(f"expected a Kubernetes quantity such as 100m or 128Mi, got {value!r}")
    text = str(value)
    if not _QUANTITY.fullmatch(text):
        raise ValueError(f"'{text}' is not a Kubernetes quantity (e.g. 100m, 0.5, 128Mi, 1Gi)")
    return text


def format_number(num: float) -> str:
    """Render a number the way an annotation wants it: '100', '0.5' — never '100.0'."""
    return str(int(num)) if float(num).is_integer() else repr(float(num))
