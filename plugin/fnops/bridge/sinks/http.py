"""The one place that turns an HTTP answer into temporary vs permanent errors."""

from __future__ import annotations

from ...errors import PermanentError, TemporaryError


def retry_after(headers) -> float | None:
    if not headers:
        return None
    value = {str(k).lower(): v for k, v in dict(headers).items()}.get("retry-after")
    try:
        return max(0.0, float(value)) if value is not None else None
    except (TypeError, ValueError):
        return None


def raise_for(what: str, status: int | None, detail: str = "", headers=None, *, permanent_codes=()) -> None:
    """429 and 5xx (and no answer) are temporary; a code in `permanent_codes` or any other
    4xx is permanent."""
    text = f"{what}: {status or 'no answer'}{' ' + detail if detail else ''}"
    if detail and detail in permanent_codes:
        raise PermanentError(text)
    if status is None or status == 429 or status >= 500:
        raise TemporaryError(text, retry_after=retry_after(headers))
    if status == 403 and retry_after(headers) is not None:  # GitHub secondary rate limit
        raise TemporaryError(text, retry_after=retry_after(headers))
    raise PermanentError(text)
