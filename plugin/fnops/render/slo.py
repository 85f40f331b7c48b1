"""SLO alerts as a PrometheusRule. The bridge keys rollbacks on the labels
`fnops_function` and `fnops_environment`, so every alert carries both."""

from __future__ import annotations

from ..spec.model import Function
from ..spec.units import format_number
from . import common
from .options import RenderOptions

# Knative queue-proxy request metrics, as Prometheus sees them.
#   otel:       Knative ≥ 1.18, OpenTelemetry HTTP server semantic conventions (seconds).
#   opencensus: the revision_* family documented for earlier releases (milliseconds).
FAMILIES = {
    "otel": {
        "bucket": "http_server_request_duration_seconds_bucket",
        "count": "http_server_request_duration_seconds_count",
        "service": "kn_service_name",
        "namespace": "k8s_namespace_name",
        "errors": 'http_response_status_code=~"5.."',
        "scale": 1.0,
    },
    "opencensus": {
        "bucket": "revision_request_latencies_bucket",
        "count": "revision_request_count",
        "service": "service_name",
        "namespace": "namespace_name",
        "errors": 'response_code_class="5xx"',
        "scale": 1000.0,
    },
}
RATE_WINDOW = "5m"


def prometheus_rule(fn: Function, opts: RenderOptions) -> dict:
    slo = fn.slo
    m = FAMILIES[opts.metrics]
    sel = [f'{m["service"]}="{fn.name}"']
    if opts.namespace:
        sel.append(f'{m["namespace"]}="{opts.namespace}"')
    where = ", ".join(sel)
    alert_labels = {"severity": "critical", "fnops_function": fn.name, "fnops_environment": fn.environment or ""}
    rules = []
    if slo.latency_p95_seconds is not None:
        threshold = format_number(round(slo.latency_p95_seconds * m["scale"], 6))
        rules.append({
            "alert": "FnopsLatencyP95High",
            "expr": f"histogram_quantile(0.95, sum by (le) (rate({m['bucket']}{{{where}}}[{RATE_WINDOW}]))) > {threshold}",
            "for": slo.for_,
            "labels": alert_labels,
            "annotations": {
                "summary": f"{fn.name} p95 latency above {format_number(slo.latency_p95_seconds * 1000)}ms",
                "description": f"p95 request latency of {fn.name} in {fn.environment} has been above the SLO for {slo.for_}.",
            },
        })
    if slo.error_rate_percent is not None:
        ratio = format_number(round(slo.error_rate_percent / 100, 8))
        rules.append({
            "alert": "FnopsErrorRateHigh",
            "expr": (f"(sum(rate({m['count']}{{{where}, {m['errors']}}}[{RATE_WINDOW}])) / "
                     f"sum(rate({m['count']}{{{where}}}[{RATE_WINDOW}]))) > {ratio}"),
            "for": slo.for_,
            "labels": alert_labels,
            "annotations": {
                "summary": f"{fn.name} 5xx rate above {format_number(slo.error_rate_percent)}%",
                "description": f"Share of 5xx responses from {fn.name} in {fn.environment} has been above the SLO for {slo.for_}.",
            },
        })
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": common.metadata(f"{fn.name}-slo", fn, opts),
        "spec": {"groups": [{"name": f"fnops.{fn.name}.slo", "rules": rules}]},
    }
