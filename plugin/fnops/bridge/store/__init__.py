"""The outbox: accepted events and one delivery per sink, durable before the 202.

`open_store(url)` picks the backend from the config's `store` URL."""

from __future__ import annotations

from .base import Delivery
from .sqlite import Store

__all__ = ["Delivery", "Store", "open_store"]


def open_store(url: str, lease_seconds: float | None = None):
    """sqlite:///path (embedded) or postgresql://… (several replicas)."""
    if url.startswith("sqlite:///"):
        return Store(url[len("sqlite://"):])
    if url.startswith(("postgresql://", "postgres://")):
        from .postgres import PostgresStore

        return PostgresStore(url) if lease_seconds is None else PostgresStore(url, lease_seconds=lease_seconds)
    raise ValueError("unsupported store URL (sqlite:///… or postgresql://…)")
