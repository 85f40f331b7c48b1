"""Scaling alerts: Knative's autoscaler (KPA) emits no event when a function scales to zero,
wakes, or sits at its max — only a gauge of its pods. These rules turn that gauge into alerts
the bridge records as scaling history (bridge/scaling.py), in the PrometheusRule beside the
SLO alerts (render/slo.py).

The gauge, per Knative metrics generation (FNOPS_KNATIVE_METRICS), read from knative/serving:

- otel, otel-1.19: `kn.revision.pods.count` (pkg/reconciler/autoscaling/kpa/metrics.go, v0.50.0),
  the PodAutoscaler's ready pods, with `k8s.namespace.name`, `kn.service.name`,
  `kn.configuration.name`, `kn.revision.name` as *metric* attributes; knative.dev/pkg's
  exporter (UnderscoreEscapingWithSuffixes, `{pod}` is an annotation, not a unit) writes
  `kn_revision_pods_count{k8s_namespace_name, kn_service_name, …}`. The autoscaler exports it
  only with `metrics-protocol: prometheus` in `config-observability` (default `none`).
- opencensus (≤ 1.18): `actual_pods` (v0.39.4, the same file) as a resource view of the
  autoscaler: `autoscaler_actual_pods{namespace_name, service_name, …}`, served by default.

Summed over the function's revisions, so a rollout (two revisions) is one count. Every rule is
labelled `fnops_scaling` and `fnops_action: record`: the bridge takes them out of the SLO
alerts before anything else looks at them, so they never roll a release back.
"""

from __future__ import annotations

from collections import namedtuple

from ..spec.model import Function
from .metrics import number

Gauge = namedtuple("Gauge", "metric namespace service")

GAUGES = {
    "otel": Gauge("kn_revision_pods_count", "k8s_namespace_name", "kn_service_name"),
    "otel-1.19": Gauge("kn_revision_pods_count", "k8s_namespace_name", "kn_service_name"),
    "opencensus": Gauge("autoscaler_actual_pods", "namespace_name", "service_name"),
}
# Scale to zero already waits out Knative's grace period; a minute more keeps a scrape gap quiet.
AT_ZERO_FOR = "1m"
# "At max scale for a while": a burst that touches the max is normal, ten minutes there is news.
AT_MAX_FOR = "10m"


def pods(fn_name: str, opts) -> str:
    g = GAUGES[opts.platform.knative_metrics]
    where = ([f'{g.namespace}="{opts.namespace}"'] if opts.namespace else []) + [f'{g.service}="{fn_name}"']
    return f"sum({g.metric}{{{', '.join(where)}}})"


def group(fn: Function, opts) -> dict | None:
    """The function's scaling rules, or None when there is nothing to watch (a KEDA
    Deployment: KEDA's own CloudEvents report it)."""
    if fn.deployer != "knative":
        return None
    count = pods(fn.name, opts)
    rules = []
    if fn.scale.min == 0:
        rules.append(_alert(fn, opts, "FnopsScaledToZero", "zero", f"{count} == 0", AT_ZERO_FOR,
                            f"{fn.name} in {fn.environment}: scaled to zero",
                            "No pod runs; the next request waits for a cold start. The alert resolves when the "
                            "function scales from zero."))
    if fn.scale.max:
        rules.append(_alert(fn, opts, "FnopsAtMaxScale", "max", f"{count} >= {number(fn.scale.max)}", AT_MAX_FOR,
                            f"{fn.name} in {fn.environment}: at its max scale ({fn.scale.max} pods) for {AT_MAX_FOR}",
                            "Requests beyond what the max scale serves queue in the activator or fail; raise "
                            "scale.max or the per-pod target if this lasts."))
    return {"name": f"fnops.{fn.name}.scaling", "rules": rules} if rules else None


def _alert(fn: Function, opts, name: str, dimension: str, expr: str, hold: str, summary: str, description: str):
    labels = {"severity": "info", "fnops_function": fn.name, "fnops_environment": fn.environment or ""}
    if opts.namespace:
        labels["namespace"] = opts.namespace  # the bridge checks it, as for the SLO alerts
    labels.update({"fnops_scaling": dimension, "fnops_action": "record"})
    return {"alert": name, "expr": expr, "for": hold, "labels": labels,
            "annotations": {"summary": summary, "description": description}}
