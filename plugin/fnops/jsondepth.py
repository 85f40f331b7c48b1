"""JSON nesting counted on the raw bytes, before `json` (which recurses) parses them.

Webhook bodies (the bridge's door) and results files (`fnops pin`) come from others: a
document nested a million levels deep would exhaust the parser's stack. One linear pass
over the structural bytes decides first."""

from __future__ import annotations

import re

_STRUCTURE = re.compile(rb'[\[\]{}"\\]')


def depth_ok(raw: bytes, limit: int) -> bool:
    """Bracket depth outside strings stays ≤ `limit`."""
    depth, in_string, escaped = 0, False, False
    for m in _STRUCTURE.finditer(raw):
        c = m.group()
        if in_string:
            if escaped:
                escaped = False
            elif c == b"\\":
                # A backslash escapes the next byte; only a quote or a backslash there is a
                # structural byte this loop would see next, so only then is it skipped.
                escaped = raw[m.end():m.end() + 1] in (b'"', b"\\")
            elif c == b'"':
                in_string = False
            continue
        if c == b'"':
            in_string = True
        elif c in (b"[", b"{"):
            depth += 1
            if depth > limit:
                return False
        elif c in (b"]", b"}"):
            depth -= 1
    return True
