"""The resolved, validated shape of a function for one environment.

Everything here is already checked: the renderer trusts these values and never
re-validates. Durations are whole seconds, percents are numbers, names are valid.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..types import GitSha, PinnedImage

RUNTIMES = ("python3.11", "python3.12", "python3.13", "dockerfile", "image")
PYTHON_RUNTIMES = RUNTIMES[:3]
DEPLOYERS = ("knative", "keda")
VISIBILITIES = ("public", "cluster-local", "none")
KPA_METRICS = ("concurrency", "rps")
HPA_METRICS = ("cpu", "memory", "prometheus")
METRICS = KPA_METRICS + HPA_METRICS
ROLLBACK_MODES = ("auto", "pr", "off")


@dataclass(frozen=True)
class Scale:
    min: int = 0
    max: int = 0  # 0 = unlimited
    metric: str | None = "concurrency"
    target: float | None = None
    window: int | None = None  # seconds
    scale_down_delay: int | None = None  # seconds
    initial: int | None = None
    prometheus_query: str | None = None
    prometheus_address: str | None = None

    @property
    def hpa_class(self) -> bool:
        return self.metric in HPA_METRICS


@dataclass(frozen=True)
class CronTrigger:
    schedule: str | None = None  # knative: PingSource
    timezone: str | None = None
    data: str | None = None  # JSON text
    start: str | None = None  # keda: a time window
    end: str | None = None
    desired_replicas: int | None = None


@dataclass(frozen=True)
class KafkaTrigger:
    bootstrap_servers: tuple[str, ...]
    topics: tuple[str, ...]
    consumer_group: str
    lag_threshold: int | None = None
    min_consumers: int | None = None
    max_consumers: int | None = None
    initial_offset: str | None = None


@dataclass(frozen=True)
class EventTrigger:
    broker: str
    filter: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Slo:
    latency_p95_seconds: float | None
    error_rate_percent: float | None
    for_: str  # Prometheus duration


@dataclass(frozen=True)
class Release:
    """releases/<env>.yaml"""

    path: str
    image: PinnedImage
    source_repo: str | None = None
    source_commit: GitSha | None = None
    source_ref: str | None = None
    source_run: str | None = None
    released_at: str | None = None
    previous_image: PinnedImage | None = None
    previous_revision: str | None = None
    rollback_of: str | None = None


@dataclass(frozen=True)
class Function:
    name: str
    runtime: str
    folder: str
    environment: str | None
    handler: str = "handler:handle"
    image: str | None = None  # repository only
    deployer: str = "knative"
    env: tuple[tuple[str, str], ...] = ()
    secrets: tuple[str, ...] = ()
    config_maps: tuple[str, ...] = ()
    requests: tuple[tuple[str, str], ...] = ()
    limits: tuple[tuple[str, str], ...] = ()
    timeout: int = 300
    concurrency: int = 0
    visibility: str = "public"
    hosts: tuple[str, ...] = ()
    scale: Scale = field(default_factory=Scale)
    triggers: tuple = ()
    slo: Slo | None = None
    canary: int | None = None
    notify_slack: str | None = None
    rollback: str = "off"
    environments: tuple[str, ...] = ()
