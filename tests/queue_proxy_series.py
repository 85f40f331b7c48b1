"""Series shaped as Prometheus stores a Knative queue-proxy's request metrics, per metrics
generation, for `promtool test rules` (tests/test_slo.py, tests/test_dashboard.py).

What each generation exports, read from knative/serving and the exporters it vendors:

- opencensus (≤ 1.18): pkg/queue/request_metric.go registers `request_count` and
  `request_latencies` (ms, buckets 5 … 100000), exported with Component "revision"
  (pkg/queue/sharedmain/main.go): `revision_request_count`, `revision_request_latencies_*`.
  Tags pod_name, container_name, response_code, response_code_class ("5xx"), route_tag; the
  resource (pkg/metrics/tags.go) adds namespace_name, service_name, configuration_name,
  revision_name to every series.
- otel-1.19 (1.19.1–1.20) `kn.queueproxy.app.duration`, otel (≥ 1.21)
  `kn.serving.invocation.duration`: unit s, buckets 0.005 … 10, one attribute
  http.response.status_code. The OpenTelemetry Prometheus exporter escapes names and adds
  the unit (`kn_serving_invocation_duration_seconds_bucket`), labels every series with its
  scope (otel_scope_name; an empty version is no label) and writes the resource
  (pkg/queue/sharedmain/otel.go: k8s.*, service.*, kn.service/configuration/revision.name,
  plus the SDK's telemetry.sdk.*) on `target_info` only.
- A series exists from the first request with its labels on (a status code's first 5xx
  makes the 5xx series, starting at its count), and then for the life of the pod.

On top come the labels of the scrape: a PodMonitor (job `<namespace>/<name>`, namespace,
pod, container, endpoint, instance) or a plain kubernetes_sd job.
"""

from __future__ import annotations

from collections import namedtuple

OTEL_BOUNDS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10)
OC_BOUNDS = (5, 10, 20, 40, 60, 80, 100, 150, 200, 250, 300, 350, 400, 450, 500, 600, 700, 800, 900, 1000, 2000,
             5000, 10000, 20000, 50000, 100000)
HISTOGRAM = {"otel": "kn_serving_invocation_duration_seconds", "otel-1.19": "kn_queueproxy_app_duration_seconds",
             "opencensus": "revision_request_latencies"}

# One queue-proxy: which function it serves, where, and how Prometheus scrapes it.
Pod = namedtuple("Pod", "function namespace revision name ip scrape", defaults=("podmonitor",))


def go_float(x: float, normalized: bool = False) -> str:
    """An `le` value as the exporter's text format writes it (Go's shortest 'g'), or as
    Prometheus 3, OpenMetrics and protobuf scrapes store it (integers with ".0")."""
    if float(x).is_integer():
        return f"{int(x)}.0" if normalized else str(int(x))
    return repr(float(x))


def _labels(d: dict) -> str:
    return "{" + ", ".join(f'{k}="{v}"' for k, v in sorted(d.items())) + "}"


def scrape_labels(pod: Pod) -> dict:
    if pod.scrape == "podmonitor":  # what Prometheus Operator makes of fnops' PodMonitor
        return {"job": f"{pod.namespace}/{pod.function}-queue-proxy", "instance": f"{pod.ip}:9091",
                "namespace": pod.namespace, "pod": pod.name, "container": "queue-proxy",
                "endpoint": "http-usermetric"}
    # a platform's own kubernetes_sd job, relabelled its own way
    return {"job": "knative-queue-proxy", "instance": f"{pod.ip}:9091", "kubernetes_namespace": pod.namespace,
            "kubernetes_pod_name": pod.name}


def target_info(pod: Pod) -> dict:
    return {**scrape_labels(pod), "k8s_container_name": "queue-proxy", "k8s_namespace_name": pod.namespace,
            "k8s_pod_name": pod.name, "kn_configuration_name": pod.function, "kn_revision_name": pod.revision,
            "kn_service_name": pod.function, "service_instance_id": pod.name, "service_name": pod.function,
            "service_version": "3f2b1c0", "telemetry_sdk_language": "go", "telemetry_sdk_name": "opentelemetry",
            "telemetry_sdk_version": "1.39.0"}


def series(generation: str, pod: Pod, minutes: int, traffic, normalized_le: bool = False) -> list[dict]:
    """promtool input_series for one pod over `minutes` one-minute scrapes (sample m holds
    what happened up to minute m). traffic(minute) -> [(status, latency_seconds, count), …]."""
    oc = generation == "opencensus"
    bounds = OC_BOUNDS if oc else OTEL_BOUNDS
    unit = 1000.0 if oc else 1.0
    hist = HISTOGRAM[generation]
    scrape = scrape_labels(pod)
    counts: dict = {}  # status -> [count, sum, [per bucket]]
    samples: dict = {}  # series text -> [value or None per minute]

    def put(name: str, labels: dict, minute: int, value: float):
        key = name + _labels(labels)
        samples.setdefault(key, [None] * (minutes + 1))[minute] = value

    for m in range(minutes + 1):
        for status, latency, n in traffic(m):
            c = counts.setdefault(status, [0, 0.0, [0] * len(bounds)])
            c[0] += n
            c[1] += latency * unit * n
            for i, b in enumerate(bounds):
                if latency * unit <= b:
                    c[2][i] += n
        for status, (count, total, buckets) in counts.items():
            if oc:
                own = {"configuration_name": pod.function, "container_name": "queue-proxy",
                       "namespace_name": pod.namespace, "pod_name": pod.name, "response_code": str(status),
                       "response_code_class": f"{status // 100}xx", "revision_name": pod.revision,
                       "route_tag": "DISABLED", "service_name": pod.function, **scrape}
                put("revision_request_count", own, m, count)
            else:
                own = {"http_response_status_code": str(status), "otel_scope_name": "knative.dev/serving/pkg/queue",
                       **scrape}
            for b, v in zip(bounds, buckets):
                put(f"{hist}_bucket", {**own, "le": go_float(b, normalized_le)}, m, v)
            put(f"{hist}_bucket", {**own, "le": "+Inf"}, m, count)
            put(f"{hist}_sum", own, m, round(total, 6))
            put(f"{hist}_count", own, m, count)
        if not oc:
            put("target_info", target_info(pod), m, 1)
    return [{"series": k, "values": _compress(v)} for k, v in sorted(samples.items())]


def _compress(values: list) -> str:
    """promtool's expanding notation: `_` for no sample, `a+bxN` for N steps of b."""
    out, i = [], 0
    while i < len(values):
        v = values[i]
        j = i
        if v is None:
            while j + 1 < len(values) and values[j + 1] is None:
                j += 1
            out.append("_" if j == i else f"_x{j - i + 1}")
        else:
            step = values[i + 1] - v if i + 1 < len(values) and values[i + 1] is not None else 0
            while j + 1 < len(values) and values[j + 1] is not None and values[j + 1] - values[j] == step:
                j += 1
            out.append(f"{_num(v)}+{_num(step)}x{j - i}" if j > i else _num(v))
        i = j + 1
    return " ".join(out)


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(float(x))
