"""From an event's (function, environment, GitOps revision) to the release it is about:
the pinned image, the previous release and the *source* repo/commit the developer pushed.

A bare mirror of the GitOps repository lives next to the outbox; a revision it does not
have triggers one fetch; a question about the branch tip (an alert) fetches first. The
pin and function.yaml are read with the loader and checks `fnops render` uses, so a pin
anyone with push access wrote is either valid or a permanent, reported error for that
event — never a crash loop. Results are cached per event key in the store, so every sink of
an event sees the same release even if the branch moves on.
"""

from __future__ import annotations

import os
import tempfile
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

    def show(self, revision: str, path: str, fresh: bool = False) -> str | None:
        """File text at revision (fetching once if the revision is unknown, or first when
        `fresh`: the tip of the branch as it is now); None if absent."""
        with self.lock:
            self._ensure()
            if fresh:
                self.fetch()
            rev = revision or self.branch
            if self.git.run("cat-file", "-e", f"{rev}^{{commit}}", check=False).returncode != 0:
                self.fetch()
                if self.git.run("cat-file", "-e", f"{rev}^{{commit}}", check=False).returncode != 0:
                    raise PermanentError(f"revision {rev} is not in the GitOps repository")
            p = self.git.run("show", f"{rev}:{path}", check=False)
            return p.stdout if p.returncode == 0 else None


class InvalidRelease(PermanentError):
    """The pin or function.yaml at that revision does not pass `fnops validate`."""


def release_info(mirror: Mirror, fn: str, env: str, revision: str, fresh: bool = False) -> dict | None:
    """The pin and the function's notify/rollback settings at `revision` (None: no such function)."""
    from ..errors import SpecError
    from ..spec import load_function, load_release_for

    base = f"{mirror.functions_dir}/{fn}"
    spec_text = mirror.show(revision, f"{base}/function.yaml", fresh=fresh)
    if spec_text is None:
        return None
    pin_text = mirror.show(revision, f"{base}/releases/{env}.yaml")
    at = revision[:7] if revision else mirror.branch
    with tempfile.TemporaryDirectory(prefix="fnops-release-") as tmp:
        folder = os.path.join(tmp, fn)
        os.makedirs(os.path.join(folder, "releases"))
        with open(os.path.join(folder, "function.yaml"), "w", encoding="utf-8") as f:
            f.write(spec_text)
        if pin_text is not None:
            with open(os.path.join(folder, "releases", f"{env}.yaml"), "w", encoding="utf-8") as f:
                f.write(pin_text)
        try:
            spec = load_function(folder, env)
            rel = load_release_for(spec) if pin_text is not None else None
        except SpecError as e:
            where = str(e.problems[0]).replace(tmp + os.sep, f"{at}:{mirror.functions_dir}/")
            raise InvalidRelease(f"invalid release at {where}") from None
    info = {"image": None, "source": {}, "previous": {}, "releasedAt": None, "rollbackOf": None,
            "notifySlack": spec.notify_slack, "rollbackMode": spec.rollback,
            "revision": revision or mirror.git.out("rev-parse", mirror.branch)}
    if rel is not None:
        source = {"repo": rel.source_repo, "commit": rel.source_commit, "ref": rel.source_ref, "run": rel.source_run}
        previous = {"image": str(rel.previous_image) if rel.previous_image else None,
                    "revision": rel.previous_revision, "source": rel.previous_source}
        info.update(image=str(rel.image), source={k: str(v) for k, v in source.items() if v},
                    previous={k: v for k, v in previous.items() if v}, releasedAt=rel.released_at,
                    rollbackOf=rel.rollback_of, ranRevision=rel.revision)
        # The canary's place in its steps, which bridge/canary.py walks (None: no split).
        from ..spec.canary import canary_state

        state = canary_state(spec, rel)
        if state is not None:
            info["canary"] = {**state, "steps": list(spec.canary_steps), "approval": spec.approval}
    return info


def raw_release(mirror: Mirror, fn: str, env: str, revision: str) -> dict | None:
    """What a render failure still needs when the folder does not load (that is often why it
    failed): the pin's image and source, read as plain YAML, nothing trusted beyond its
    shape — each sink checks the repo and the SHA it would use. No rollback, default channel."""
    import yaml

    text = mirror.show(revision, f"{mirror.functions_dir}/{fn}/releases/{env}.yaml", fresh=not revision)
    if text is None or len(text) > 64 * 1024:
        return None
    try:
        pin = yaml.safe_load(text)
    except yaml.YAMLError:
        return None
    if not isinstance(pin, dict):
        return None
    source = pin.get("source") if isinstance(pin.get("source"), dict) else {}
    return {"image": pin["image"] if isinstance(pin.get("image"), str) else None,
            "source": {k: source[k] for k in ("repo", "commit") if isinstance(source.get(k), str)},
            "previous": {}, "releasedAt": None, "rollbackOf": None, "notifySlack": None, "rollbackMode": "off",
            "revision": revision or mirror.git.out("rev-parse", mirror.branch), "invalid": True}
