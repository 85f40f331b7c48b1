"""The bridge's metrics through prometheus_client: the exposition (escaping included) is the
library's, and every label value comes from a fixed set, so no request can add a series."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily

PATHS = ("/v1/argocd", "/v1/alertmanager", "/v1/keda", "/healthz", "/readyz", "/metrics")
SOURCES = ("argocd", "alertmanager", "keda")
RESULTS = ("done", "retry", "failed")
CUTS = ("header-timeout", "body-timeout", "evicted", "refused")
CODES = ("200", "202", "400", "401", "404", "405", "413", "422", "503")
# A Slack post whose outcome is unknown (a crash or outage after it was sent) is looked up
# before posting again: found (adopted), absent, or not possible (no-scope: the token lacks
# channels:history/groups:history; no-channel-id: a channel name whose ID is not known yet; error).
SLACK_LOOKUPS = ("found", "absent", "truncated", "no-scope", "no-channel-id", "error")


class _OutboxCollector:
    """Outbox state read at scrape time: events, and deliveries by sink and state."""

    def __init__(self, store, sinks):
        self.store, self.sinks = store, tuple(sinks)

    def collect(self):
        counts = self.store.counts()
        events = GaugeMetricFamily("fnops_bridge_events", "Events in the outbox.")
        events.add_metric([], counts["events"])
        yield events
        by = GaugeMetricFamily("fnops_bridge_deliveries", "Deliveries by sink and state (failed: the dead letter).",
                               labels=["sink", "state"])
        for sink in self.sinks:
            for state in ("pending", "done", "failed"):
                by.add_metric([sink, state], counts["deliveries"].get((sink, state), 0))
        yield by


class Metrics:
    def __init__(self, store=None, sinks=()):
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter("fnops_bridge_http_requests", "HTTP requests by path and status code.",
                                ["path", "code"], registry=r)
        self.unauthorized = Counter("fnops_bridge_unauthorized", "POSTs refused for want of credentials.", registry=r)
        self.accepted = Counter("fnops_bridge_events_accepted", "New events written to the outbox.", ["source"],
                                registry=r)
        self.duplicates = Counter("fnops_bridge_events_duplicate", "Repeats folded into a known event.", ["source"],
                                  registry=r)
        self.deliveries = Counter("fnops_bridge_delivery_attempts", "Delivery attempts by sink and result.",
                                  ["sink", "result"], registry=r)
        self.ignored = Counter("fnops_bridge_events_ignored", "Events and alerts ignored for their origin (not the "
                               "function's Application or namespace).", ["source"], registry=r)
        # The connection guard (guard.py): open connections, and those it closed, by why.
        self.connections = Gauge("fnops_bridge_http_connections", "Open HTTP connections.", registry=r)
        self.connections_cut = Counter("fnops_bridge_http_connections_cut", "Connections the bridge closed: "
                                       "header-timeout, body-timeout, evicted (room for a new one), refused.",
                                       ["reason"], registry=r)
        self.latency = Histogram("fnops_bridge_delivery_seconds", "Accept-to-delivered time per sink.", ["sink"],
                                 buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800), registry=r)
        self.slack_lookups = Counter("fnops_bridge_slack_lookups", "Slack posts of unknown outcome looked up in "
                                     "the channel's history, by result.", ["result"], registry=r)
        for result in SLACK_LOOKUPS:
            self.slack_lookups.labels(result)
        for source in SOURCES:  # every series exists from the start: a rate over it needs no first event
            self.ignored.labels(source)
        for reason in CUTS:
            self.connections_cut.labels(reason)
        if store is not None:
            r.register(_OutboxCollector(store, sinks))

    def request(self, path: str, code: int) -> None:
        self.requests.labels(path if path in PATHS else "other", str(code) if str(code) in CODES else "other").inc()

    def delivered(self, sink: str, result: str, n: int = 1) -> None:
        self.deliveries.labels(sink, result).inc(n)

    def render(self) -> bytes:
        return generate_latest(self.registry)
