"""The bridge's door: strict JSON and typed, bounded fields, before anything is stored.

Webhook bodies come from the network; every value is checked for its type and size here,
and names that become Slack text, audit lines, metrics or Git paths must be DNS labels.
Parsing is linear: nesting depth is counted on the raw text before `json` (which recurses)
sees it, and NaN/Infinity are refused.
"""

from __future__ import annotations

import json

from ..spec.units import is_dns1123_label
from ..jsondepth import depth_ok
from ..types import GitSha

MAX_DEPTH = 32


class BadPayload(ValueError):
    """400: the message names the field (never echoes its value)."""


def _no_constants(name: str):
    raise BadPayload(f"body is not strict JSON ({name} is not a number)")


def parse(raw: bytes):
    if not depth_ok(raw, MAX_DEPTH):
        raise BadPayload(f"body nests deeper than {MAX_DEPTH} levels")
    try:
        return json.loads(raw, parse_constant=_no_constants)
    except BadPayload:
        raise
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise BadPayload("body is not valid JSON") from None


class Fields:
    """Typed access to one JSON object, naming fields by their path in errors."""

    def __init__(self, obj, where: str = ""):
        if not isinstance(obj, dict):
            raise BadPayload(f"{'field ' + repr(where.rstrip('.')) if where else 'body'} must be a JSON object")
        self.obj, self.where = obj, where

    def _name(self, key: str) -> str:
        return f"'{self.where}{key}'"

    def _present(self, key: str, required: bool):
        """The field's value, None when absent — unless it is required."""
        v = self.obj.get(key)
        if v is None and required:
            raise BadPayload(f"missing required field {self._name(key)}")
        return v

    def _sized(self, key: str, required: bool, kind: type, what: str, unit: str, max_items: int):
        v = self._present(key, required)
        if v is None:
            return kind()
        if not isinstance(v, kind):
            raise BadPayload(f"field {self._name(key)} must be {what}")
        if len(v) > max_items:
            raise BadPayload(f"field {self._name(key)} has more than {max_items} {unit}")
        return v

    def text(self, key: str, *, required: bool = False, max_len: int = 256, default: str = "") -> str:
        v = self._present(key, required)
        if v is None:
            return default
        if not isinstance(v, str):
            raise BadPayload(f"field {self._name(key)} must be a string")
        if len(v) > max_len:
            raise BadPayload(f"field {self._name(key)} is longer than {max_len} characters")
        if "\x00" in v:
            raise BadPayload(f"field {self._name(key)} holds a NUL character")
        return v

    def free_text(self, key: str, limit: int = 2000) -> str:
        """Human text (messages): any length is accepted, what is kept is bounded."""
        v = self.obj.get(key)
        if v is None:
            return ""
        if not isinstance(v, str):
            raise BadPayload(f"field {self._name(key)} must be a string")
        v = v.replace("\x00", "")
        return v if len(v) <= limit else v[: limit - 1] + "…"

    def label(self, key: str, *, required: bool = False) -> str:
        v = self.text(key, required=required, max_len=63)
        if v and not is_dns1123_label(v):
            raise BadPayload(f"field {self._name(key)} must be a DNS label (lowercase letters, digits, '-')")
        return v

    def revision(self, key: str) -> str:
        v = self.text(key, max_len=64)
        if v:
            try:
                GitSha(v)
            except ValueError:
                raise BadPayload(f"field {self._name(key)} must be a full Git commit SHA") from None
        return v

    def mapping(self, key: str, *, required: bool = False, max_items: int = 256) -> dict:
        return self._sized(key, required, dict, "an object", "entries", max_items)

    def string_map(self, key: str, *, required: bool = False) -> dict:
        m = self.mapping(key, required=required)
        for k, val in m.items():
            if not isinstance(val, str) or len(k) > 316 or len(val) > 1024:
                raise BadPayload(f"field {self._name(key)} must map names to strings (≤ 1024 characters)")
        return m

    def items(self, key: str, *, required: bool = False, max_items: int = 1000) -> list:
        return self._sized(key, required, list, "a list", "items", max_items)

    def flag(self, key: str) -> bool:
        v = self.obj.get(key, False)
        if not isinstance(v, bool):
            raise BadPayload(f"field {self._name(key)} must be true or false")
        return v
