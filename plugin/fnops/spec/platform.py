"""What the platform lets a function folder ask for, and what it runs: set by whoever runs
the CMP, never by the folder nor by an Application.

Read from the process's own environment — the CMP sidecar container's (and, to agree with
it, CI's and the bridge's) — and never from `ARGOCD_ENV_*`, which an Application's plugin
env sets: whoever may edit an Application must not be able to loosen these.

  FNOPS_KEDA_HOSTS         dns (default): KEDA HTTP hosts are lowercase DNS names;
                           wildcard: also `*.example.com`; catch-all: also `*` (every host)
  FNOPS_KEDA_HTTP_API      how `deployer: keda` HTTP is routed through KEDA's HTTP add-on:
                           httpscaledobject (default; add-on ≥ 0.8) or interceptorroute
                           (InterceptorRoute http.keda.sh/v1beta1, add-on ≥ 0.15)
  FNOPS_PROMETHEUS_SERVER  the serverAddress used when a function names none
  FNOPS_PROMETHEUS_SERVERS comma-separated serverAddresses a function may name; with either
                           set, no other address renders (neither set: any http(s) URL)
  FNOPS_ALLOWED_SECRETS    comma-separated patterns (fnmatch; `{function}` stands for the
                           function's name) for envFrom.secrets; unset: any secret in the
                           namespace, which is then the boundary (see README)
  FNOPS_DOMAIN_CLAIMS, FNOPS_ALLOWED_DOMAINS, FNOPS_DOMAIN_TLS_SECRET, FNOPS_CLUSTER_DOMAIN
                           custom domains (http.domain): see spec/domains.py

What the SLO alerts and dashboards are written against (README, "SLOs, metrics, dashboards"):

  FNOPS_KNATIVE_METRICS    which queue-proxy metrics the cluster's Knative exports:
                           otel (default; Knative ≥ 1.21), otel-1.19 (1.19.1–1.20),
                           opencensus (≤ 1.18)
  FNOPS_RULE_LABELS        comma-separated key=value labels on the PrometheusRule and
                           PodMonitor, for the Prometheus' ruleSelector/podMonitorSelector
                           (kube-prometheus-stack: release=<its release name>)
  FNOPS_RULE_NAMESPACE     where they go (default: the Application's namespace)
  FNOPS_QUEUE_PROXY_SCRAPE podmonitor (default): a PodMonitor per function with an slo;
                           none: the platform scrapes queue-proxy itself
  FNOPS_DASHBOARDS         labels (key=value, comma-separated) the Grafana sidecar picks
                           dashboard ConfigMaps up by (default grafana_dashboard=1), or none
  FNOPS_DASHBOARD_NAMESPACE where dashboard ConfigMaps go (default: the Application's)
"""

from __future__ import annotations

import os
from collections import namedtuple

from ..errors import UsageError
from ..escape import shown
from ..lazyre import LazyRe
from .domains import DomainSettings

KEDA_HOSTS = ("dns", "wildcard", "catch-all")
# The HTTP add-on's routing objects: HTTPScaledObject (v1alpha1, deprecated from v0.15 on)
# or InterceptorRoute (v1beta1, routing only; our ScaledObject does all the scaling).
KEDA_HTTP_APIS = ("httpscaledobject", "interceptorroute")
SCRAPES = ("podmonitor", "none")
# The queue-proxy's request-latency histogram per Knative metrics generation: its buckets'
# upper bounds in the unit it exports (knative/serving pkg/queue/request_metric.go at
# knative-v1.17.0 and v1.18.0, milliseconds; at v1.19.1 … v1.23.0, seconds) and that unit in seconds.
# An SLO threshold is read off these bounds, so it cannot lie beyond the last one.
LATENCY_BUCKETS = {
    "otel": ((0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10), 1.0),
    "otel-1.19": ((0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10), 1.0),
    "opencensus": ((5, 10, 20, 40, 60, 80, 100, 150, 200, 250, 300, 350, 400, 450, 500, 600, 700, 800, 900,
                    1000, 2000, 5000, 10000, 20000, 50000, 100000), 0.001),
}
KNATIVE_METRICS = tuple(LATENCY_BUCKETS)
DEFAULT_DASHBOARD_LABELS = (("grafana_dashboard", "1"),)
_LABEL_KEY = LazyRe(r"([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
                    r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?")
_LABEL_VALUE = LazyRe(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")


class Platform(namedtuple("Platform", "keda_hosts prometheus_default prometheus_servers secrets knative_metrics "
                          "rule_labels rule_namespace scrape dashboard_labels dashboard_namespace domains keda_http_api",
                          defaults=("dns", None, (), (), "otel", (), None, "podmonitor", DEFAULT_DASHBOARD_LABELS,
                                    None, DomainSettings(), "httpscaledobject"))):
    """rule_labels, dashboard_labels: ((key, value), …); dashboard_labels () = no dashboards.
    domains: custom-domain settings (FNOPS_DOMAIN_CLAIMS …, see spec/domains.py)."""

    __slots__ = ()

    @property
    def latency_buckets(self) -> tuple:
        return LATENCY_BUCKETS[self.knative_metrics]

    @property
    def prometheus_allowed(self) -> tuple:
        """The addresses a function may name; () when the platform restricts nothing."""
        extra = (self.prometheus_default,) if self.prometheus_default else ()
        return tuple(dict.fromkeys(self.prometheus_servers + extra))

    def secret_patterns(self, function: str) -> tuple:
        return tuple(p.replace("{function}", function) for p in self.secrets)

    @classmethod
    def from_environ(cls, environ=None) -> "Platform":
        environ = os.environ if environ is None else environ
        hosts = environ.get("FNOPS_KEDA_HOSTS") or "dns"
        if hosts not in KEDA_HOSTS:
            raise UsageError(f"FNOPS_KEDA_HOSTS='{hosts}' is not one of {', '.join(KEDA_HOSTS)}")
        default = environ.get("FNOPS_PROMETHEUS_SERVER") or None
        servers = _listed(environ.get("FNOPS_PROMETHEUS_SERVERS", ""))
        if default or servers:
            from .units import http_url

            for name, urls in (("FNOPS_PROMETHEUS_SERVER", (default,) if default else ()),
                               ("FNOPS_PROMETHEUS_SERVERS", servers)):
                for url in urls:
                    try:
                        http_url(url)
                    except ValueError as e:
                        raise UsageError(f"{name}: {e}") from None
        return cls(hosts, default, servers, _listed(environ.get("FNOPS_ALLOWED_SECRETS", "")),
                   *_monitoring(environ), domains=DomainSettings.from_environ(environ),
                   keda_http_api=_keda_http_api(environ))


def _keda_http_api(environ) -> str:
    api = environ.get("FNOPS_KEDA_HTTP_API") or "httpscaledobject"
    if api not in KEDA_HTTP_APIS:
        raise UsageError(f"FNOPS_KEDA_HTTP_API='{shown(api)}' is not one of {', '.join(KEDA_HTTP_APIS)}")
    return api


def _listed(text: str) -> tuple:
    return tuple(x.strip() for x in text.split(",") if x.strip())


def _monitoring(environ) -> tuple:
    """knative_metrics … dashboard_namespace, from the FNOPS_* settings the module names."""
    metrics = environ.get("FNOPS_KNATIVE_METRICS") or "otel"
    if metrics not in KNATIVE_METRICS:
        raise UsageError(f"FNOPS_KNATIVE_METRICS='{shown(metrics)}' is not one of {', '.join(KNATIVE_METRICS)} "
                         "(Knative ≥ 1.21, 1.19.1–1.20, ≤ 1.18)")
    scrape = environ.get("FNOPS_QUEUE_PROXY_SCRAPE") or "podmonitor"
    if scrape not in SCRAPES:
        raise UsageError(f"FNOPS_QUEUE_PROXY_SCRAPE='{shown(scrape)}' is not one of {', '.join(SCRAPES)}")
    dashboards = environ.get("FNOPS_DASHBOARDS") or ""
    dash_labels = () if dashboards.strip() == "none" else (
        _labels("FNOPS_DASHBOARDS", dashboards) if dashboards else DEFAULT_DASHBOARD_LABELS)
    return (metrics, _labels("FNOPS_RULE_LABELS", environ.get("FNOPS_RULE_LABELS", "")),
            _namespace("FNOPS_RULE_NAMESPACE", environ), scrape, dash_labels,
            _namespace("FNOPS_DASHBOARD_NAMESPACE", environ))


def _labels(name: str, text: str) -> tuple:
    out = {}
    for item in _listed(text):
        key, sep, value = item.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or len(key) > 253 or not _LABEL_KEY.fullmatch(key) or len(key.rpartition("/")[2]) > 63:
            raise UsageError(f"{name}: '{shown(item)}' is not key=value with a Kubernetes label key "
                             "(e.g. release=kube-prometheus-stack)")
        if len(value) > 63 or not _LABEL_VALUE.fullmatch(value):
            raise UsageError(f"{name}: '{shown(value)}' is not a Kubernetes label value (at most 63 letters, "
                             "digits, '-', '_' or '.', starting and ending with a letter or digit)")
        if key.startswith(("app.kubernetes.io/", "fnops.dev/")):
            raise UsageError(f"{name}: '{shown(key)}' is a label fnops sets itself")
        out[key] = value
    return tuple(out.items())


def _namespace(name: str, environ) -> str | None:
    ns = environ.get(name) or None
    if ns is not None:
        from .units import is_dns1123_label

        if not is_dns1123_label(ns):
            raise UsageError(f"{name}='{shown(ns)}' is not a namespace name (lowercase DNS label)")
    return ns
