"""The outbox: accepted events and one delivery per sink, durable before the 202.

`open_store(url)` picks the backend from the config's `store` URL."""

from __future__ import annotations

import logging
import sqlite3

from .base import Delivery, StoreUnavailable
from .sqlite import Store

__all__ = ["Delivery", "Store", "open_store"]


def open_store(url: str, lease_seconds: float | None = None, *, pooled: bool = True, connect_timeout: int = 3):
    """sqlite:///path (embedded) or postgresql://… (several replicas). A store that cannot be
    opened raises TemporaryError: one line, naming the backend, never the URL's secrets."""
    from ...errors import TemporaryError

    if url.startswith("sqlite:///"):
        try:
            return Store(url[len("sqlite://"):])
        except StoreUnavailable as e:
            raise TemporaryError(f"cannot open the outbox (sqlite): {e.detail}") from None
        except (OSError, sqlite3.Error) as e:
            raise TemporaryError(f"cannot open the outbox (sqlite): {redacted(str(e), url)}") from None
    if url.startswith(("postgresql://", "postgres://")):
        import psycopg
        import psycopg_pool

        from .postgres import PostgresStore

        kw = {} if lease_seconds is None else {"lease_seconds": lease_seconds}
        # psycopg_pool logs each failed connection with libpq's message, which can quote the DSN.
        logging.getLogger("psycopg.pool").addFilter(_Redact(url))
        try:
            return PostgresStore(url, pooled=pooled, connect_timeout=connect_timeout, **kw)
        except StoreUnavailable as e:  # already redacted
            raise TemporaryError(f"cannot reach the outbox (postgresql): {e.detail}") from None
        except (psycopg.Error, psycopg_pool.PoolTimeout) as e:
            raise TemporaryError(f"cannot reach the outbox (postgresql): {redacted(str(e), url)}") from None
    raise ValueError("unsupported store URL (sqlite:///… or postgresql://…)")


class _Redact(logging.Filter):
    def __init__(self, url: str):
        super().__init__()
        self.url = url

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = redacted(record.getMessage(), self.url, limit=2000), None
        return True


def redacted(text: str, url: str, limit: int = 300) -> str:
    """`text` on one line, bounded, with every secret the store URL carries (userinfo
    password, password parameters) and the URL itself replaced."""
    from urllib.parse import parse_qsl, unquote, urlsplit

    from ...escape import printable

    secrets = [url]
    try:
        parts = urlsplit(url)
        secrets += [unquote(parts.password or ""), parts.password or ""]
        secrets += [v for k, v in parse_qsl(parts.query, keep_blank_values=True) if "password" in k.lower()]
    except ValueError:
        pass
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        text = text.replace(secret, "***")
    text = printable(" ".join(text.split()))
    return text if len(text) <= limit else text[:limit - 1] + "…"
