"""`deployer: keda`: a plain Deployment scaled by one KEDA ScaledObject, with the HTTP
add-on when the function serves HTTP and a KafkaSource per kafka trigger.

KEDA allows one ScaledObject per Deployment, so HTTP scaling joins the other triggers as
an `external-push` trigger and the HTTPScaledObject is told not to create its own. Where the
platform says its add-on has the newer routing API (FNOPS_KEDA_HTTP_API=interceptorroute,
add-on ≥ 0.15), an InterceptorRoute carries the routing and the metric instead: it never
creates a ScaledObject, and the add-on's scaler finds it by the trigger's `interceptorRoute`.

Nothing reaches a Deployment scaled to zero but through something that waits for it
(upstream-review F8, F9): HTTP enters by Service `<fn>`, an ExternalName of the add-on's
interceptor, which holds the request until a pod is ready (the workload's own Service is
`<fn>-app`); Kafka records reach the handler through a KafkaSource consuming the very group
the ScaledObject measures, retrying while the Deployment starts.
"""

from __future__ import annotations

from ..spec.model import CronTrigger, Function, KafkaTrigger, Release
from ..spec.units import format_number
from . import common, eventing
from .options import RenderOptions

PORT = 8080
SKIP_SO = "httpscaledobject.keda.sh/skip-scaledobject-creation"
# Scaling from zero takes KEDA's polling interval (30 s) plus a pod start; without retries a
# record the dispatcher cannot deliver is dropped and its offset committed, so the lag that
# would wake the Deployment never shows. 1+2+…+128 s ≈ 4 min of retries.
COLD_START_DELIVERY = {"retry": 8, "backoffPolicy": "exponential", "backoffDelay": "PT1S"}


def app_name(fn: Function) -> str:
    return f"{fn.name}-app"


def objects(fn: Function, release: Release, opts: RenderOptions) -> list:
    http = fn.visibility != "none"
    kafka = any(isinstance(t, KafkaTrigger) for t in fn.triggers)
    out = [deployment(fn, release, opts, serves=http or kafka)]
    if http or kafka:
        out.append(service(fn, opts))
    if http:
        route = interceptor_route if opts.platform.keda_http_api == "interceptorroute" else http_scaled_object
        out += [entry_service(fn, opts), route(fn, opts)]
    out.append(scaled_object(fn, opts, http))
    sink = {"ref": {"apiVersion": "v1", "kind": "Service", "name": app_name(fn)}}
    out += [eventing.kafka_source(fn, t, name, opts, sink=sink, default_delivery=COLD_START_DELIVERY)
            for t, name in eventing.names(fn) if isinstance(t, KafkaTrigger)]
    return out


def _selector(fn: Function) -> dict:
    return {"app.kubernetes.io/name": fn.name}


def deployment(fn: Function, release: Release, opts: RenderOptions, *, serves: bool) -> dict:
    ports = [{"name": "http", "containerPort": PORT, "protocol": "TCP"}] if serves else None
    probe = {"tcpSocket": {"port": PORT}} if serves else None
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
    """The pods themselves: what the interceptor and a KafkaSource deliver to."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": common.metadata(app_name(fn), fn, opts),
        "spec": {
            "selector": _selector(fn),
            "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}],
        },
    }


def entry_service(fn: Function, opts: RenderOptions) -> dict:
    """`<fn>` for callers: a DNS alias of the interceptor, which routes by Host header. An
    ExternalName maps no ports, so callers use the interceptor's (8080 by default)."""
    host, port = opts.interceptor
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": common.metadata(fn.name, fn, opts),
        "spec": {"type": "ExternalName", "externalName": host,
                 "ports": [{"name": "http", "port": port, "protocol": "TCP"}]},
    }


def hosts(fn: Function, opts: RenderOptions) -> list:
    """The folder's hosts plus the names callers in the cluster reach `<fn>` by. The
    interceptor's routing table is cluster-wide, so only namespace-qualified names: a bare
    `<fn>` would collide with the same function in another environment."""
    own = [f"{fn.name}.{opts.namespace}", f"{fn.name}.{opts.namespace}.svc",
           f"{fn.name}.{opts.namespace}.svc.cluster.local"] if opts.namespace else [fn.name]
    return list(dict.fromkeys([*fn.hosts, *own]))


def http_scaled_object(fn: Function, opts: RenderOptions) -> dict:
    s = fn.scale
    spec: dict = {
        "hosts": hosts(fn, opts),
        "scaleTargetRef": {"name": fn.name, "service": app_name(fn), "port": 80},
        "replicas": {"min": s.min, **({"max": s.max} if s.max else {})},
    }
    if s.scale_down_delay is not None:
        spec["scaledownPeriod"] = s.scale_down_delay
    spec["scalingMetric"] = scaling_metric(fn)
    return {
        "apiVersion": "http.keda.sh/v1alpha1",
        "kind": "HTTPScaledObject",
        "metadata": common.metadata(fn.name, fn, opts, annotations={SKIP_SO: "true"}),
        "spec": spec,
    }


def scaling_metric(fn: Function) -> dict:
    """The same in both APIs (HTTPScaledObject v1alpha1 and InterceptorRoute v1beta1)."""
    s = fn.scale
    target = int(s.target) if s.target is not None else 100
    if s.metric == "rps":
        return {"requestRate": {"targetValue": target, "window": "1m", "granularity": "1s"}}
    return {"concurrency": {"targetValue": target}}


def interceptor_route(fn: Function, opts: RenderOptions) -> dict:
    """Routing only: replicas and the scale-down delay stay on our ScaledObject."""
    return {
        "apiVersion": "http.keda.sh/v1beta1",
        "kind": "InterceptorRoute",
        "metadata": common.metadata(fn.name, fn, opts),
        "spec": {
            "target": {"service": app_name(fn), "port": 80},
            "rules": [{"hosts": hosts(fn, opts)}],
            "scalingMetric": scaling_metric(fn),
        },
    }


def scaled_object(fn: Function, opts: RenderOptions, http: bool) -> dict:
    s = fn.scale
    triggers = []
    if http and s.metric in ("concurrency", "rps"):
        key = "interceptorRoute" if opts.platform.keda_http_api == "interceptorroute" else "httpScaledObject"
        triggers.append({"type": "external-push", "metadata": {"scalerAddress": opts.keda_http_scaler, key: fn.name}})
    if s.metric in ("cpu", "memory") and s.memory_target is not None:
        triggers.append({"type": s.metric, "metricType": "AverageValue", "metadata": {"value": s.memory_target}})
    elif s.metric in ("cpu", "memory"):
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
