"""Finding function folders: a folder with a function.yaml, searched below the paths given."""

from __future__ import annotations

import os

SKIP = {".git", "node_modules", "__pycache__", ".venv", "venv", "releases"}


def function_folders(paths) -> list[str]:
    out: list[str] = []
    for p in paths:
        if os.path.isfile(os.path.join(p, "function.yaml")) or not os.path.isdir(p):
            out.append(os.path.normpath(p))  # a missing path is reported by validation
            continue
        for root, dirs, files in os.walk(p):
            dirs[:] = sorted(d for d in dirs if d not in SKIP and not d.startswith("."))
            if "function.yaml" in files:
                out.append(os.path.normpath(root))
                dirs[:] = []
    seen: set = set()
    return [f for f in out if not (f in seen or seen.add(f))]
