"""The scrape that makes the SLO's metrics exist: a PodMonitor for the function's
queue-proxies, on the port Knative names for user metrics (`http-usermetric`, 9091). The
queue-proxy serves request metrics there only when config-observability says
`request-metrics-protocol: prometheus` (Knative ≥ 1.19; on ≤ 1.18 it always does)."""

from __future__ import annotations

from ..spec.model import Function
from . import common
from .options import RenderOptions
from .slo import monitoring_namespace

USER_METRICS_PORT = "http-usermetric"  # knative/serving pkg/apis/serving/v1 UserQueueMetricsPortName


def pod_monitor(fn: Function, opts: RenderOptions) -> dict:
    spec: dict = {"selector": {"matchLabels": {"serving.knative.dev/service": fn.name}}}
    if opts.namespace:
        # Explicit, so the PodMonitor reads the function's pods wherever FNOPS_RULE_NAMESPACE puts it.
        spec["namespaceSelector"] = {"matchNames": [opts.namespace]}
    spec["podMetricsEndpoints"] = [{"port": USER_METRICS_PORT, "path": "/metrics"}]
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PodMonitor",
        "metadata": common.metadata(f"{fn.name}-queue-proxy", fn, monitoring_namespace(opts),
                                    extra_labels=dict(opts.platform.rule_labels)),
        "spec": spec,
    }
