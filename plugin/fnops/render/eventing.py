"""Knative Eventing: PingSource (cron), KafkaSource, Trigger (broker events)."""

from __future__ import annotations

from ..spec.model import CronTrigger, EventTrigger, Function, KafkaTrigger
from . import common
from .options import RenderOptions

AE = "autoscaling.eventing.knative.dev/"


def _names(fn: Function):
    """Stable object names per kind: `<fn>-cron`, `<fn>-cron-2`, …"""
    seen: dict = {}
    for t in fn.triggers:
        kind = {CronTrigger: "cron", KafkaTrigger: "kafka", EventTrigger: "event"}[type(t)]
        seen[kind] = seen.get(kind, 0) + 1
        n = seen[kind]
        yield t, f"{fn.name}-{kind}" + (f"-{n}" if n > 1 else "")


def sources(fn: Function, opts: RenderOptions) -> list:
    out = []
    for t, name in _names(fn):
        if isinstance(t, CronTrigger):
            out.append(_ping(fn, t, name, opts))
        elif isinstance(t, KafkaTrigger):
            out.append(_kafka(fn, t, name, opts))
        else:
            out.append(_trigger(fn, t, name, opts))
    return out


def _ping(fn: Function, t: CronTrigger, name: str, opts: RenderOptions) -> dict:
    spec: dict = {"schedule": t.schedule}
    if t.timezone:
        spec["timezone"] = t.timezone
    if t.data is not None:
        spec["contentType"] = "application/json"
        spec["data"] = t.data
    spec["sink"] = common.service_ref(fn)
    return {"apiVersion": "sources.knative.dev/v1", "kind": "PingSource",
            "metadata": common.metadata(name, fn, opts), "spec": spec}


def _kafka(fn: Function, t: KafkaTrigger, name: str, opts: RenderOptions) -> dict:
    ann = None
    if t.lag_threshold is not None:
        # eventing-kafka-broker's own KEDA integration (controller-autoscaler-keda).
        ann = {AE + "class": "keda.autoscaling.knative.dev", AE + "lag-threshold": str(t.lag_threshold)}
        if t.min_consumers is not None:
            ann[AE + "min-scale"] = str(t.min_consumers)
        if t.max_consumers is not None:
            ann[AE + "max-scale"] = str(t.max_consumers)
    spec: dict = {
        "bootstrapServers": list(t.bootstrap_servers),
        "topics": list(t.topics),
        "consumerGroup": t.consumer_group,
    }
    if t.initial_offset:
        spec["initialOffset"] = t.initial_offset
    spec["sink"] = common.service_ref(fn)
    return {"apiVersion": "sources.knative.dev/v1beta1", "kind": "KafkaSource",
            "metadata": common.metadata(name, fn, opts, annotations=ann), "spec": spec}


def _trigger(fn: Function, t: EventTrigger, name: str, opts: RenderOptions) -> dict:
    return {
        "apiVersion": "eventing.knative.dev/v1",
        "kind": "Trigger",
        # The webhook adds the broker label; rendering it avoids a permanent diff.
        "metadata": common.metadata(name, fn, opts, extra_labels={"eventing.knative.dev/broker": t.broker}),
        "spec": {"broker": t.broker, "filter": {"attributes": dict(t.filter)}, "subscriber": common.service_ref(fn)},
    }
