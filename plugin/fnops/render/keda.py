"""`deployer: keda`: a plain Deployment scaled by one KEDA ScaledObject, with the HTTP
add-on when the function serves HTTP.

KEDA allows one ScaledObject per Deployment, so HTTP scaling joins the other triggers as
an `external-push` trigger and the HTTPScaledObject is told not to create its own.
"""

from __future__ import annotations

from ..spec.model import CronTrigger, Function, KafkaTrigger, Release
from ..spec.units import format_number
from . import common
from .options import RenderOptions

PORT = 8080
SKIP_SO = "httpscaledobject.keda.sh/skip-scaledobject-creation"


def objects(fn: Function, release: Release, opts: RenderOptions) -> list:
    http = fn.visibility != "none"
    out = [deployment(fn, release, opts)]
    if http:
        out += [service(fn, opts), http_scaled_object(fn, opts)]
    out.append(scaled_object(fn, opts, http))
    return out


def _selector(fn: Function) -> dict:
    return {"app.kubernetes.io/name": fn.name}


def deployment(fn: Function, release: Release, opts: RenderOptions) -> dict:
    http = fn.visibility != "none"
    ports = [{"name": "http", "containerPort": PORT, "protocol": "TCP"}] if http else None
    probe = {"tcpSocket": {"port": PORT}} if http else None
    c = common.container(fn, str(release.image), name="function", extra_env=(("PORT", str(PORT)),),
                         ports=ports, probe=probe)
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": common.metadata(fn.name, fn, opts),
        # No spec.replicas: KEDA owns it, and Argo CD would fight it otherwise.
        "spec": {
            "selector": {"matchLabels": _selector(fn)},
            "template": {
                "metadata": {"labels": common.labels(fn, None)},
                "spec": {"terminationGracePeriodSeconds": max(30, fn.timeout), "containers": [c]},
            },
        },
    }


def service(fn: Function, opts: RenderOptions) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": common.metadata(fn.name, fn, opts),
        "spec": {
            "selector": _selector(fn),
            "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}],
        },
    }


def http_scaled_object(fn: Function, opts: RenderOptions) -> dict:
    s = fn.scale
    spec: dict = {
        "hosts": list(fn.hosts) or [fn.name],
        "scaleTargetRef": {"name": fn.name, "service": fn.name, "port": 80},
        "replicas": {"min": s.min, **({"max": s.max} if s.max else {})},
    }
    if s.scale_down_delay is not None:
        spec["scaledownPeriod"] = s.scale_down_delay
    target = int(s.target) if s.target is not None else 100
    if s.metric == "rps":
        spec["scalingMetric"] = {"requestRate": {"targetValue": target, "window": "1m", "granularity": "1s"}}
    else:
        spec["scalingMetric"] = {"concurrency": {"targetValue": target}}
    return {
        "apiVersion": "http.keda.sh/v1alpha1",
        "kind": "HTTPScaledObject",
        "metadata": common.metadata(fn.name, fn, opts, annotations={SKIP_SO: "true"}),
        "spec": spec,
    }


def scaled_object(fn: Function, opts: RenderOptions, http: bool) -> dict:
    s = fn.scale
    triggers = []
    if http and s.metric in ("concurrency", "rps"):
        triggers.append({"type": "external-push",
                         "metadata": {"scalerAddress": opts.keda_http_scaler, "httpScaledObject": fn.name}})
    if s.metric in ("cpu", "memory"):
        triggers.append({"type": s.metric, "metricType": "Utilization",
                         "metadata": {"value": format_number(s.target if s.target is not None else 80)}})
    if s.metric == "prometheus":
        triggers.append({"type": "prometheus", "metadata": {
            "serverAddress": s.prometheus_address, "query": s.prometheus_query, "threshold": format_number(s.target)}})
    for t in fn.triggers:
        if isinstance(t, KafkaTrigger):
            for topic in t.topics:
                md = {"bootstrapServers": ",".join(t.bootstrap_servers), "consumerGroup": t.consumer_group, "topic": topic}
                if t.lag_threshold is not None:
                    md["lagThreshold"] = str(t.lag_threshold)
                if t.initial_offset:
                    md["offsetResetPolicy"] = t.initial_offset
                triggers.append({"type": "kafka", "metadata": md})
        elif isinstance(t, CronTrigger):
            triggers.append({"type": "cron", "metadata": {
                "timezone": t.timezone, "start": t.start, "end": t.end, "desiredReplicas": str(t.desired_replicas)}})
    spec: dict = {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": fn.name},
                  "minReplicaCount": s.min}
    if s.max:
        spec["maxReplicaCount"] = s.max
    if s.scale_down_delay is not None:
        spec["cooldownPeriod"] = s.scale_down_delay
    spec["triggers"] = triggers
    return {"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject",
            "metadata": common.metadata(fn.name, fn, opts), "spec": spec}
