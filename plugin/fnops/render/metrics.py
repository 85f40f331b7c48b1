"""The queue-proxy's request metrics as Prometheus stores them, per Knative metrics
generation (FNOPS_KNATIVE_METRICS), and PromQL that selects one function in one namespace.

Read from knative/serving and the exporters it uses (README, "SLOs, metrics, dashboards"):

- opencensus (≤ 1.18): `revision_request_count` and `revision_request_latencies_*` (ms),
  with namespace_name, service_name, revision_name and response_code_class on every series.
- otel-1.19 (1.19.1–1.20): `kn_queueproxy_app_duration_seconds_*`; otel (≥ 1.21):
  `kn_serving_invocation_duration_seconds_*`. Either carries only http_response_status_code
  (and otel_scope_name): the function, revision and namespace are OpenTelemetry resource
  attributes, which the Prometheus exporter writes on `target_info` alone. So a series is
  the function's when its scrape target (job, instance) has that function's target_info.

`and on (job, instance)` rather than `* on (…) group_left`: a set filter needs no one-to-one
match, so a duplicate target_info (two scrapes of one pod) cannot turn a rule into an error.
"""

from __future__ import annotations

from collections import namedtuple

from ..spec.units import format_number

Family = namedtuple("Family", "histogram requests errors status service namespace revision on_target_info")

FAMILIES = {
    "otel": Family("kn_serving_invocation_duration_seconds", "kn_serving_invocation_duration_seconds_count",
                   'http_response_status_code=~"5.."', "http_response_status_code",
                   "kn_service_name", "k8s_namespace_name", "kn_revision_name", True),
    "otel-1.19": Family("kn_queueproxy_app_duration_seconds", "kn_queueproxy_app_duration_seconds_count",
                        'http_response_status_code=~"5.."', "http_response_status_code",
                        "kn_service_name", "k8s_namespace_name", "kn_revision_name", True),
    "opencensus": Family("revision_request_latencies", "revision_request_count",
                         'response_code_class="5xx"', "response_code_class",
                         "service_name", "namespace_name", "revision_name", False),
}


def number(x: float) -> str:
    return format_number(round(x, 9))


def le(bound: float) -> str:
    """An `le` matcher that holds whichever way the bound was written: the text format writes
    1 as "1", OpenMetrics, protobuf scrapes and Prometheus 3 as "1.0"."""
    text = number(bound)
    return f'le=~"{text}|{text}.0"' if float(bound).is_integer() else f'le="{text}"'


class Selector:
    """One function's queue-proxy series in one namespace (None: any namespace, for a
    render outside Argo CD)."""

    def __init__(self, family: Family, function: str, namespace: str | None, prefilter: bool):
        self.family, self.function, self.namespace = family, function, namespace
        # Our own PodMonitor stamps `namespace` on every series it scrapes: matching it first
        # keeps each rule from reading every queue-proxy in the cluster.
        self.scoped = [f'namespace="{namespace}"'] if prefilter and namespace else []

    def _ours(self) -> list[str]:
        f = self.family
        own = [f'{f.namespace}="{self.namespace}"'] if self.namespace else []
        return [*own, f'{f.service}="{self.function}"']

    @property
    def target_info(self) -> str:
        return f"target_info{{{', '.join(self.scoped + self._ours())}}}"

    def rate(self, metric: str, window: str, *extra: str) -> str:
        """Per-series rate of `metric` restricted to this function (not summed)."""
        f = self.family
        where = [*extra, *self.scoped] + ([] if f.on_target_info else self._ours())
        sel = f"{metric}{{{', '.join(where)}}}" if where else metric
        if f.on_target_info:
            return f"rate({sel}[{window}]) and on (job, instance) {self.target_info}"
        return f"rate({sel}[{window}])"

    def total(self, metric: str, window: str, *extra: str) -> str:
        return f"sum({self.rate(metric, window, *extra)})"

    def by(self, label: str, metric: str, window: str, *extra: str) -> str:
        """`sum by (label)` of the rate; a resource label (the revision, on target_info) is
        copied onto the series first."""
        f = self.family
        # group_left needs one target_info per target: fine for a panel, which is why the
        # alerts filter with `and` instead.
        if f.on_target_info and label in (f.revision, f.service, f.namespace):
            where = [*extra, *self.scoped]
            sel = f"{metric}{{{', '.join(where)}}}" if where else metric
            return (f"sum by ({label}) (rate({sel}[{window}]) * on (job, instance) group_left ({label}) "
                    f"{self.target_info})")
        return f"sum by ({label}) ({self.rate(metric, window, *extra)})"

    # -- the SLIs ---------------------------------------------------------------------------

    def requests(self, window: str) -> str:
        return self.total(self.family.requests, window)

    def error_ratio(self, window: str) -> str:
        f = self.family
        return f"{self.total(f.requests, window, f.errors)} / {self.requests(window)}"

    def latency_count(self, window: str) -> str:
        return self.total(f"{self.family.histogram}_count", window)

    def within(self, window: str, threshold: float, bounds: tuple) -> str:
        """The rate of requests answered within `threshold` (in the histogram's unit):
        a bucket when one ends there, else interpolated linearly inside the bucket that
        holds it — as histogram_quantile reads the same buckets, so the alert and the p95
        on the dashboard agree."""
        bucket = f"{self.family.histogram}_bucket"
        if threshold in bounds:
            return self.total(bucket, window, le(threshold))
        hi = next(b for b in bounds if b > threshold)
        lo = max((b for b in bounds if b < threshold), default=0)
        upper = self.total(bucket, window, le(hi))
        if lo == 0:
            return f"{upper} * {number(threshold / hi)}"
        lower = self.total(bucket, window, le(lo))
        return f"({lower} + ({upper} - {lower}) * {number((threshold - lo) / (hi - lo))})"

    def slow_ratio(self, window: str, threshold: float, bounds: tuple) -> str:
        return f"(1 - {self.within(window, threshold, bounds)} / {self.latency_count(window)})"

    def quantile(self, q: float, window: str) -> str:
        """In the histogram's unit."""
        bucket = f"{self.family.histogram}_bucket"
        return f"histogram_quantile({number(q)}, sum by (le) ({self.rate(bucket, window)}))"


def selector(fn_name: str, opts) -> Selector:
    p = opts.platform
    return Selector(FAMILIES[p.knative_metrics], fn_name, opts.namespace, p.scrape == "podmonitor")
