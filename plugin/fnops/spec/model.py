"""The resolved, validated shape of a function for one environment.

Everything here is already checked: the renderer trusts these values and never
re-validates. Durations are whole seconds, percents are numbers, names are valid.

Records are immutable namedtuples rather than dataclasses: `fnops render` starts once per
app per commit in Argo CD, and dataclasses (with `inspect`) cost more start-up than all
of rendering.
"""

from __future__ import annotations

from collections import namedtuple


def record(name: str, fields: str, **defaults):
    """namedtuple with keyword defaults for the trailing fields."""
    names = fields.split()
    tail = names[len(names) - len(defaults):] if defaults else []
    if sorted(tail) != sorted(defaults):
        raise TypeError(f"{name}: defaults must be the trailing fields")
    return namedtuple(name, names, defaults=[defaults[n] for n in tail])

# node: the LTS lines on 2026-12-02 (22 and 24 in maintenance, 26 active LTS since 2026-10-28),
# and 20 (end of life 2026-04-30) for the machines that still have only it.
NODE_RUNTIMES = ("node20", "node22", "node24", "node26")
RUNTIMES = ("python3.11", "python3.12", "python3.13", *NODE_RUNTIMES, "dockerfile", "image")
PYTHON_RUNTIMES = RUNTIMES[:3]
DEPLOYERS = ("knative", "keda")
VISIBILITIES = ("public", "cluster-local", "none")
KPA_METRICS = ("concurrency", "rps")
HPA_METRICS = ("cpu", "memory", "prometheus")
METRICS = KPA_METRICS + HPA_METRICS
ROLLBACK_MODES = ("auto", "pr", "off")


class Scale(record("Scale", "min max metric target window scale_down_delay initial prometheus_query prometheus_address "
                   "min_set max_set memory_target", min=0, max=0, metric="concurrency", target=None, window=None,
                   scale_down_delay=None, initial=None, prometheus_query=None, prometheus_address=None,
                   min_set=False, max_set=False, memory_target=None)):
    """max 0 = unlimited; window and scale_down_delay in whole seconds. min_set/max_set: the
    folder wrote them (only those reach a Knative Service: the platform's defaults and
    max-scale-limit decide the rest). memory_target: a per-pod memory quantity, canonical
    (with metric memory, instead of a utilization percent under deployer keda)."""

    __slots__ = ()

    @property
    def hpa_class(self) -> bool:
        return self.metric in HPA_METRICS


# knative: schedule/timezone/data -> PingSource, data as content_type says (a mapping as
# JSON, a string as text); keda: a start/end time window.
CronTrigger = record("CronTrigger", "schedule timezone data start end desired_replicas content_type",
                     schedule=None, timezone=None, data=None, start=None, end=None, desired_replicas=None,
                     content_type=None)


# Eventing's DeliverySpec: backoff_delay an ISO-8601 duration; dead_letter a URL or the name
# of a Knative Service in the namespace.
Delivery = record("Delivery", "retry backoff_policy backoff_delay dead_letter",
                  retry=None, backoff_policy=None, backoff_delay=None, dead_letter=None)


KafkaTrigger = record("KafkaTrigger", "bootstrap_servers topics consumer_group lag_threshold min_consumers "
                      "max_consumers initial_offset delivery", lag_threshold=None, min_consumers=None,
                      max_consumers=None, initial_offset=None, delivery=None)


EventTrigger = record("EventTrigger", "broker filter delivery", delivery=None)  # filter: ((attribute, value), …)


# for_: a Prometheus duration; min_rate: requests per second below which no SLO alert fires.
Slo = record("Slo", "latency_p95_seconds error_rate_percent for_ min_rate", min_rate=0.1)
SLO_DEFAULTS = {"for": "2m", "minRate": 0.1}

# Multi-window, multi-burn-rate alerts over a 30-day error budget (Google SRE workbook,
# "Alerting on SLOs", as Sloth and Pyrra render it): a pair fires while the budget burns
# faster than `factor` over both its long and its short window. The short window lets the
# alert stop soon after the burn does; only the fast pair may roll a release back.
# (speed, long window, short window, factor, action)
BURNS = (("Fast", "1h", "5m", 14.4, "rollback"), ("Slow", "6h", "30m", 6.0, "notify"))
LATENCY_QUANTILE = 0.95  # latencyP95: 95% of requests within it, so 5% is the latency budget


# releases/<env>.yaml; image/previous_image are PinnedImage, source_commit a GitSha.
# source_time: the source commit's time as the pin records it (orders pins without history).
# revision: the Knative revision name rendered for this pin when it was written (what really
# ran; None in pins written before it was recorded). canary_step: the percent the bridge moved
# the canary to, canary_at when; promoted: the bridge promoted it (100% new, no split).
Release = record("Release", "path image source_repo source_commit source_ref source_run released_at "
                 "previous_image previous_revision rollback_of previous_source source_time revision canary_step "
                 "promoted canary_at", source_repo=None,
                 source_commit=None, source_ref=None, source_run=None, released_at=None, previous_image=None,
                 previous_revision=None, rollback_of=None, previous_source=None, source_time=None, revision=None,
                 canary_step=None, promoted=False, canary_at=None)


# `test:` — what `fnops ship` runs inside the image it just built, before any push: argv
# (a tuple of strings, no shell) and a timeout in whole seconds. Not named Test*: pytest
# would try to collect it wherever a test module imports it.
ImageTest = record("ImageTest", "command timeout", timeout=600)
TEST_TIMEOUT_DEFAULT, TEST_TIMEOUT_MAX = 600, 3600


# image: the repository only (releases pin tag + digest); env/requests/limits: ((k, v), …).
# test: an ImageTest, or None when the function declares none.
# canary_steps: traffic.steps (percents the bridge advances through after each bake, then
# promotes); bake_seconds: traffic.bakeTime, how long each step bakes.
# domain: http.domain as a spec.domains.Domain (name, tls_secret), or None.
Function = record(
    "Function",
    "name runtime folder environment handler image deployer env secrets config_maps requests limits timeout "
    "concurrency visibility hosts scale triggers slo canary notify_slack rollback approval environments test "
    "canary_steps bake_seconds domain",
    handler="handler:handle", image=None, deployer="knative", env=(), secrets=(), config_maps=(), requests=(),
    limits=(), timeout=300, concurrency=0, visibility="public", hosts=(), scale=Scale(), triggers=(), slo=None,
    canary=None, notify_slack=None, rollback="off", approval="none", environments=(), test=None,
    canary_steps=(), bake_seconds=600, domain=None,
)
