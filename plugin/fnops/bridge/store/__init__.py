"""The outbox: accepted events and one delivery per sink, durable before the 202.

`open_store(url)` picks the backend from the config's `store` URL."""

from __future__ import annotations

from .sqlite import Store

__all__ = ["Store", "open_store"]


def open_store(url: str):
    if url.startswith("sqlite:///"):
        return Store(url[len("sqlite:///") - 1:])
    raise ValueError(f"unsupported store '{url}'")
