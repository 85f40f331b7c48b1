"""From an event's (function, environment, GitOps revision) to the release it is about:
the pinned image, the previous release and the *source* repo/commit the developer pushed.

A bare mirror of the GitOps repository lives next to the outbox; a revision it does not
have triggers one fetch. Results are cached per event key in the store, so every sink of
an event sees the same release even if the branch moves on.
"""

from __future__ import annotations

import os
import threading

from ..errors import PermanentError, TemporaryError
from ..delivery.gitops import Git


class Mirror:
    def __init__(self, path: str, url: str, branch: str, token: str | None, functions_dir: str):
        self.path, self.url, self.branch, self.functions_dir = path, url, branch, functions_dir
        self.git = Git(path, token, url)
        self.lock = threading.Lock()

    def _ensure(self) -> None:
        if not os.path.isdir(os.path.join(self.path, "objects")):
            os.makedirs(self.path, exist_ok=True)
            self.git.run("init", "--quiet", "--bare")
            self.git.run("remote", "add", "--", "origin", self.url)

    def fetch(self) -> None:
        p = self.git.run("fetch", "--quiet", "--no-tags", "origin", f"+refs/heads/{self.branch}:refs/heads/{self.branch}",
                         check=False)
        if p.returncode != 0:
            raise TemporaryError(f"cannot fetch the GitOps repository: {self.git.redact(p.stderr.strip()[-200:])}")

    def show(self, revision: str, path: str) -> str | None:
        """File text at revision (fetching once if the revision is unknown); None if absent."""
        with self.lock:
            self._ensure()
            rev = revision or self.branch
            if self.git.run("cat-file", "-e", f"{rev}^{{commit}}", check=False).returncode != 0:
                self.fetch()
                if self.git.run("cat-file", "-e", f"{rev}^{{commit}}", check=False).returncode != 0:
                    raise PermanentError(f"revision {rev} is not in the GitOps repository")
            p = self.git.run("show", f"{rev}:{path}", check=False)
            return p.stdout if p.returncode == 0 else None


def release_info(mirror: Mirror, fn: str, env: str, revision: str) -> dict | None:
    """The pin and the function's notify/rollback settings at `revision` (None: no such function)."""
    import yaml

    base = f"{mirror.functions_dir}/{fn}"
    spec_text = mirror.show(revision, f"{base}/function.yaml")
    if spec_text is None:
        return None
    pin_text = mirror.show(revision, f"{base}/releases/{env}.yaml")
    spec = yaml.safe_load(spec_text) or {}
    overlay = (spec.get("environments") or {}).get(env) or {}
    merged = {**spec, **overlay}
    pin = yaml.safe_load(pin_text) if pin_text else None
    pin = pin if isinstance(pin, dict) else {}
    return {
        "image": pin.get("image"), "source": pin.get("source") or {}, "previous": pin.get("previous") or {},
        "releasedAt": pin.get("releasedAt"), "rollbackOf": pin.get("rollbackOf"),
        "notifySlack": ((merged.get("notify") or {}).get("slack")), "rollbackMode": merged.get("rollback", "off"),
        "revision": revision or mirror.git.out("rev-parse", mirror.branch),
    }
