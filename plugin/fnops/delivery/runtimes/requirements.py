"""A python function's requirements.txt, read for what makes a rebuild differ.

pip re-resolves every requirement at each build, so `requests>=2` may install another
release next week and the same folder would give another digest. Exact pins (`name==1.2.3`)
keep the versions; `--hash=sha256:…` on every line (e.g. `pip-compile --generate-hashes`)
also keeps the bytes, and pip then refuses anything else. Unpinned lines are warned about,
not refused: the build still works, it is only not reproducible.
"""

from __future__ import annotations

import os
import re

from ...errors import Problem

_PINNED = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(\[[A-Za-z0-9._,\s-]*\])?\s*===?\s*[A-Za-z0-9.+!_-]+\s*(;.*)?$",
                     re.ASCII)
MAX_LINES = 2000


def _logical_lines(text: str):
    """(first line number, text) per requirement, continuation lines joined."""
    start, parts = None, []
    for n, raw in enumerate(text.splitlines()[:MAX_LINES], 1):
        line = raw.split(" #", 1)[0] if not raw.lstrip().startswith("#") else ""
        if start is None:
            start = n
        if line.rstrip().endswith("\\"):
            parts.append(line.rstrip()[:-1])
            continue
        parts.append(line)
        yield start, " ".join(parts).strip()
        start, parts = None, []


def unpinned(folder: str, display: str | None = None) -> list[Problem]:
    """One warning per requirement that is not `name==version` (options lines are pip's)."""
    path = os.path.join(folder, "requirements.txt")
    shown = os.path.join(display or folder, "requirements.txt")
    if not os.path.isfile(path) or os.path.islink(path):
        return []
    with open(path, encoding="utf-8", errors="replace") as f:
        text = f.read(256 * 1024)
    out = []
    for line_no, line in _logical_lines(text):
        if not line or line.startswith("-"):
            continue
        spec = line.split(" --hash", 1)[0].strip()
        if not _PINNED.match(spec):
            out.append(Problem(shown, line_no, 1, f"'{spec[:80]}' is not pinned to one version (name==version): a "
                                                  "rebuild may install a newer release and give another digest"))
    return out
