"""What sinks share: the store, the GitOps mirror, and release correlation."""

from __future__ import annotations

import os

from ..errors import PermanentError
from .correlate import InvalidRelease, Mirror, raw_release, release_info


class Context:
    def __init__(self, config, store, data_dir: str):
        self.config, self.store, self.data_dir = config, store, data_dir
        self.metrics = None  # the server's Metrics, once built (sinks count what they see)
        g = config.gitops
        self.mirror = Mirror(os.path.join(data_dir, "gitops-mirror.git"), g.repo, g.branch, g.token, g.functions_dir)

    def release(self, event: dict) -> dict | None:
        """The release an event is about, fixed the first time anyone asks (cached per key)."""
        if "release" in event:
            return event["release"]
        cached = self.store.get("release", event["key"])
        if cached is not None:
            if "error" in cached:  # every sink of the event gets the same answer, without asking Git again
                raise PermanentError(cached["error"])
            return cached or None
        # An alert, or a render failure of the branch, names no revision: it is about the tip as it is now.
        revision = event.get("revision", "")
        try:
            try:
                info = release_info(self.mirror, event["function"], event["environment"], revision, fresh=not revision)
            except InvalidRelease:
                if event.get("kind") != "render-failed":
                    raise
                # The folder that failed to render usually fails to load too: report it anyway.
                info = raw_release(self.mirror, event["function"], event["environment"], revision)
        except PermanentError as e:
            self.store.put("release", event["key"], {"error": str(e)})
            raise
        self.store.put("release", event["key"], info or {})
        return info

    def release_at_tip(self, event: dict) -> dict | None:
        return release_info(self.mirror, event["function"], event["environment"], "", fresh=True)
