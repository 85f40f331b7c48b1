"""Sinks: one small interface, one module per sink, a factory map.

A sink's `deliver(event, ctx)` either returns (optionally with follow-up events to put in
the outbox) or raises TemporaryError (retry later, honouring retry_after) or
PermanentError (stop retrying this delivery; visible in /metrics and the log). Every
delivery must be idempotent: the outbox may hand the same (event, sink) over again after
a crash, and the sink uses the store to recognise what it already did.
"""

from __future__ import annotations


class Sink:
    name = "sink"
    kinds: tuple | None = None  # event kinds this sink wants; None = all

    def accepts(self, event: dict) -> bool:
        # `onlySinks` is set by the bridge itself (scaling transitions: the audit log, and Slack
        # only when it matters), never taken from a payload.
        if "onlySinks" in event and self.name not in event["onlySinks"]:
            return False
        return self.kinds is None or event.get("kind") in self.kinds

    def deliver(self, event: dict, ctx) -> list[dict] | None:  # pragma: no cover - interface
        raise NotImplementedError


def build(config, ctx) -> dict:
    """name -> Sink for everything the config enables."""
    from .audit import AuditSink
    from .canary import CanarySink
    from .github import GitHubSink
    from .rollback import RollbackSink
    from .slack import SlackSink

    timeout = config.delivery.timeout
    factories = {
        "slack": lambda: SlackSink(config.slack, config.argocd_url, timeout) if config.slack else None,
        "github": lambda: GitHubSink(config.github, config.argocd_url, timeout) if config.github else None,
        "audit": lambda: AuditSink(config.gitops, ctx.data_dir),
        "rollback": lambda: RollbackSink(config.gitops, config.rollback, config.github),
        "canary": lambda: CanarySink(config.gitops, config.rollback, config.github, config.argocd_url),
    }
    return {name: s for name, make in factories.items() if (s := make()) is not None}
