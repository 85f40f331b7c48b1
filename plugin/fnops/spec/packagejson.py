"""A node function's package.json, checked as `fnops validate` and the build read it.

The image installs dependencies with `npm ci`, which installs exactly what package-lock.json
pins and checks every tarball against the lockfile's `integrity`. Without a lockfile there
is nothing to pin: npm would resolve the ranges anew at every build, so another week gives
another tree and another digest. Such a folder is a problem of the folder (exit 2), found
before anything is built.
"""

from __future__ import annotations

import json
import os
import re

from ..errors import Problem

MAX_BYTES = 1024 * 1024
LOCKFILES = ("npm-shrinkwrap.json", "package-lock.json")  # npm ci prefers the shrinkwrap
# What `npm ci --omit=dev` installs; devDependencies never reach an image.
INSTALLED = ("dependencies", "optionalDependencies")


def _position(text: str, key: str) -> tuple[int, int]:
    """line, col of the first `"key":` in the file (1, 1 when it cannot be found)."""
    m = re.search(r'"' + re.escape(key) + r'"\s*:', text)
    if not m:
        return 1, 1
    return text.count("\n", 0, m.start()) + 1, m.start() - (text.rfind("\n", 0, m.start()) + 1) + 1


def check(folder: str, display: str | None = None) -> tuple[bool, list[Problem]]:
    """-> (whether npm must install anything, the problems of package.json). No package.json
    is a function without dependencies."""
    path = os.path.join(folder, "package.json")
    shown = os.path.join(display or folder, "package.json")
    if not os.path.isfile(path) or os.path.islink(path):
        return False, []
    with open(path, "rb") as f:
        raw = f.read(MAX_BYTES + 1)
    if len(raw) > MAX_BYTES:
        return False, [Problem(shown, 1, 1, f"larger than {MAX_BYTES // 1024} KiB; a package.json is a manifest")]
    text = raw.decode("utf-8", "replace")
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        return False, [Problem(shown, e.lineno, e.colno, f"not JSON: {e.msg}")]
    if not isinstance(doc, dict):
        return False, [Problem(shown, 1, 1, 'must be a JSON object ({"name": …, "dependencies": {…}})')]
    declared = []
    for key in INSTALLED:
        deps = doc.get(key)
        if deps is None:
            continue
        if not isinstance(deps, dict):
            line, col = _position(text, key)
            return False, [Problem(shown, line, col, f"'{key}' must be an object of name: version")]
        if deps:
            declared.append(key)
    if not declared:
        return False, []
    if not any(os.path.isfile(os.path.join(folder, lock)) for lock in LOCKFILES):
        line, col = _position(text, declared[0])
        return True, [Problem(shown, line, col, f"'{declared[0]}' without a package-lock.json: the build installs "
                                                "with `npm ci`, exactly what the lockfile pins (integrity-checked); "
                                                "run `npm install --package-lock-only` in the folder and commit "
                                                "package-lock.json")]
    return True, []
