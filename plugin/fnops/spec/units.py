"""Parsers for the small value languages in function.yaml: durations, percents,
Kubernetes quantities and names. Each raises ValueError with a message that says what
would be valid."""

from __future__ import annotations

from ..escape import shown  # noqa: F401  (the spec's messages quote values through it)
from ..lazyre import LazyRe

_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
MAX_DURATION_CHARS = 32  # "1h30m15s500ms" is 13; anything longer is not a duration a person writes
DNS1035 = LazyRe(r"[a-z]([-a-z0-9]*[a-z0-9])?")
DNS1123_LABEL = LazyRe(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
# k8s.io/apimachinery resource.Quantity, the forms people write. [0-9], never \d: in a str
# pattern \d is any Unicode digit ('٣', '３'), which Kubernetes would refuse.
_QUANTITY = LazyRe(r"[+]?([0-9]+(\.[0-9]*)?|\.[0-9]+)(n|u|m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei|[eE][+-]?[0-9]+)?")
_DECIMAL = LazyRe(r"([0-9]+(\.[0-9]*)?|\.[0-9]+)")
# RFC 1123 host names as Kubernetes checks them: lowercase labels joined by dots.
DNS1123_SUBDOMAIN = LazyRe(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")


def duration_seconds(value) -> float:
    """'300ms', '30s', '5m', '1h30m' (Go duration syntax, units ms/s/m/h) -> seconds.

    One left-to-right pass over at most MAX_DURATION_CHARS characters: linear, whatever
    the input (a regex rescanning digits made long inputs quadratic)."""
    if isinstance(value, bool) or not isinstance(value, str):
        raise ValueError(f"expected a duration such as 30s, 5m or 1h, got {shown(value)}")
    text = value.strip()
    if len(text) > MAX_DURATION_CHARS:
        raise ValueError(f"'{shown(value)}' is not a duration: longer than {MAX_DURATION_CHARS} characters")
    if text == "0":
        return 0.0
    total = _duration(text)
    if total is None:
        raise ValueError(f"'{shown(value)}' is not a duration (use e.g. 300ms, 30s, 5m, 1h30m)")
    return total


def _duration(text: str) -> float | None:
    """Seconds in `text` (digits, optional fraction, unit; repeated), or None."""
    if not text:
        return None
    i, n, total = 0, len(text), 0.0
    while i < n:
        start = i
        while i < n and text[i].isascii() and text[i].isdigit():
            i += 1
        if i < n and text[i] == "." and i > start:
            i += 1
            frac = i
            while i < n and text[i].isascii() and text[i].isdigit():
                i += 1
            if i == frac:
                return None
        if i == start:
            return None
        number = float(text[start:i])
        if text.startswith("ms", i):
            unit, i = "ms", i + 2
        elif i < n and text[i] in "smh":
            unit, i = text[i], i + 1
        else:
            return None
        total += number * _UNIT_SECONDS[unit]
    return total


def is_dns1035(name, max_len: int = 63) -> bool:
    """A DNS-1035 label (Kubernetes names): length first, so the pattern sees ≤ max_len."""
    return isinstance(name, str) and 0 < len(name) <= max_len and DNS1035.fullmatch(name) is not None


def is_dns1123_label(name, max_len: int = 63) -> bool:
    return isinstance(name, str) and 0 < len(name) <= max_len and DNS1123_LABEL.fullmatch(name) is not None


def is_dns1123_subdomain(name) -> bool:
    """A lowercase DNS name (`fn.example.com`): at most 253 characters, labels at most 63."""
    return (isinstance(name, str) and 0 < len(name) <= 253 and DNS1123_SUBDOMAIN.fullmatch(name) is not None
            and all(len(label) <= 63 for label in name.split(".")))


def http_url(value) -> str:
    """A server's http(s) URL: scheme, host, optional port and path. No credentials, which
    would be written into a manifest, and nothing but printable ASCII."""
    from urllib.parse import urlsplit  # only functions that name a server pay for it

    bad = f"'{shown(value)}' is not an http(s) server URL (e.g. http://prometheus.monitoring:9090)"
    if (not isinstance(value, str) or len(value) > 2048 or not value.isascii() or not value.isprintable()
            or " " in value):
        raise ValueError(bad)
    try:
        url = urlsplit(value)
        url.port  # noqa: B018 - raises on a port that is not one
    except ValueError:
        raise ValueError(bad) from None
    if url.scheme not in ("http", "https") or not url.hostname or url.query or url.fragment:
        raise ValueError(bad)
    if "@" in url.netloc:
        raise ValueError(f"'{shown(value)}' carries credentials; a URL in a manifest must not")
    return value


def whole_seconds(value, lo: int, hi: int) -> int:
    s = duration_seconds(value)
    if s != int(s):
        raise ValueError(f"'{shown(value)}' must be whole seconds")
    if not lo <= s <= hi:
        raise ValueError(f"'{shown(value)}' is out of range; allowed {_fmt_dur(lo)}–{_fmt_dur(hi)}")
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
        raise ValueError(f"'{shown(value)}' must be a positive whole number of seconds, e.g. 5m")
    return _fmt_dur(int(s))


def percent(value) -> float:
    """'1%' or 1 or 0.5 -> percent as a number in (0, 100)."""
    if isinstance(value, bool):
        raise ValueError(f"expected a percentage such as 1% or 0.5%, got {shown(value)}")
    if isinstance(value, str) and len(value) > MAX_DURATION_CHARS:
        raise ValueError(f"'{shown(value)}' is not a percentage (write it like 1% or 0.5%)")
    if isinstance(value, str):
        text = value.strip()
        # float() alone would take '٣%', '1_0%' and 'nan%'
        if not text.endswith("%") or not _DECIMAL.fullmatch(text[:-1]):
            raise ValueError(f"'{shown(value)}' is not a percentage (write it like 1% or 0.5%)")
        num = float(text[:-1])
    elif isinstance(value, (int, float)):
        num = float(value)
    else:
        raise ValueError(f"expected a percentage such as 1%, got {shown(value)}")
    if not 0 < num < 100:
        raise ValueError(f"'{shown(value)}' must be between 0% and 100% (exclusive)")
    return num


_DEC_SUFFIX = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_BIN_SUFFIX = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}
_DEC_NAME = {e: s for s, e in _DEC_SUFFIX.items()}
_BIN_NAME = {0: "", **{e // 10: s for s, e in _BIN_SUFFIX.items()}}
_QUANTITY_MAX = (1 << 63) - 1  # apimachinery silently caps anything larger; fnops refuses it


def quantity(value) -> str:
    """A Kubernetes quantity in the form the API server stores it (resource.Quantity's
    canonical form: 0.5 → 500m, 1024Mi → 1Gi, 1.5Gi → 1536Mi). A Knative Service is a custom
    resource, so Argo CD compares what was rendered with what was stored as plain JSON: any
    other spelling of the same amount stays OutOfSync for ever."""
    return quantity_parts(value)[0]


def quantity_parts(value) -> tuple:
    """(canonical text, the amount in billionths) of a quantity. Whole numbers throughout:
    apimachinery keeps nothing finer than a billionth (it rounds up to one), and the
    `fractions`/`decimal` imports would cost every render that declares resources."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ValueError(f"expected a Kubernetes quantity such as 100m or 128Mi, got {shown(value)}")
    text = str(value)
    m = _QUANTITY.fullmatch(text) if len(text) <= 64 else None
    if m is None:
        raise ValueError(f"'{shown(text)}' is not a Kubernetes quantity (e.g. 100m, 0.5, 128Mi, 1Gi)")
    suffix = m.group(3) or ""
    whole, _, frac = text[:len(text) - len(suffix)].lstrip("+").partition(".")
    digits = int(whole + frac or "0")
    if digits == 0:
        return "0", 0
    binary = suffix in _BIN_SUFFIX
    exponent = 0 if binary else _DEC_SUFFIX[suffix] if suffix in _DEC_SUFFIX else int(suffix[1:])
    if exponent > 40:  # 10**exponent of a 60-digit exponent would never finish
        raise ValueError(f"'{shown(text)}' is larger than a Kubernetes quantity can be")
    # amount = digits × 2**bits × 10**(exponent - len(frac)); in billionths, rounded up
    # (non-zero amounts never round to zero there).
    scale = max(exponent - len(frac) + 9, -120)
    num = digits << (_BIN_SUFFIX[suffix] if binary else 0)
    nanos = num * 10**scale if scale >= 0 else -(-num // 10**-scale)
    if nanos > _QUANTITY_MAX * 10**9:
        raise ValueError(f"'{shown(text)}' is larger than a Kubernetes quantity can be")
    if binary and nanos >= 1024 * 10**9 and nanos % 10**9 == 0:
        n, times = nanos // 10**9, 0
        while n % 1024 == 0:
            n, times = n // 1024, times + 1
        return f"{n}{_BIN_NAME[times]}", nanos
    n, e = nanos, -9
    while n % 10 == 0:
        n, e = n // 10, e + 1
    n, e = n * 10 ** (e % 3), e - e % 3
    if suffix and not binary and suffix not in _DEC_SUFFIX:  # 1e3 stays in exponent form
        return f"{n}" + (f"e{e}" if e else ""), nanos
    return f"{n}{_DEC_NAME[e]}", nanos


def format_number(num: float) -> str:
    """Render a number the way an annotation wants it: '100', '0.5' — never '100.0'."""
    return str(int(num)) if float(num).is_integer() else repr(float(num))


_UTC = LazyRe(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z")


def utc_seconds(value) -> int | None:
    """`2026-11-22T10:00:00Z` → seconds since the epoch; None for anything else."""
    import calendar
    import time

    if not isinstance(value, str) or not _UTC.fullmatch(value):
        return None
    try:
        return calendar.timegm(time.strptime(value, "%Y-%m-%dT%H:%M:%SZ"))
    except ValueError:
        return None


def utc_text(seconds: int) -> str:
    import time

    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))
