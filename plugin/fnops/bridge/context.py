"""What sinks share: the store, the GitOps mirror, and release correlation."""

from __future__ import annotations

import os

from .correlate import Mirror, release_info


class Context:
    def __init__(self, config, store, data_dir: str):
        self.config, self.store, self.data_dir = config, store, data_dir
        g = config.gitops
        self.mirror = Mirror(os.path.join(data_dir, "gitops-mirror.git"), g.repo, g.branch, g.token, g.functions_dir)

    def release(self, event: dict) -> dict | None:
        """The release an event is about, fixed the first time anyone asks (cached per key)."""
        if "release" in event:
            return event["release"]
        cached = self.store.get("release", event["key"])
        if cached is not None:
            return cached or None
        info = release_info(self.mirror, event["function"], event["environment"], event.get("revision", ""))
        self.store.put("release", event["key"], info or {})
        return info

    def release_at_tip(self, event: dict) -> dict | None:
        self.mirror.fetch()
        return release_info(self.mirror, event["function"], event["environment"], "")
