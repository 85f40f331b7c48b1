"""Knative Eventing: PingSource (cron), KafkaSource, Trigger (broker events)."""

from __future__ import annotations

from ..spec.model import CronTrigger, EventTrigger, Function, KafkaTrigger
from . import common
from .options import RenderOptions

AE = "autoscaling.eventing.knative.dev/"


def names(fn: Function):
    """Stable object names per kind: `<fn>-cron`, `<fn>-cron-2`, …"""
    seen: dict = {}
    for t in fn.triggers:
        kind = {CronTrigger: "cron", KafkaTrigger: "kafka", EventTrigger: "event"}[type(t)]
        seen[kind] = seen.get(kind, 0) + 1
        n = seen[kind]
        yield t, f"{fn.name}-{kind}" + (f"-{n}" if n > 1 else "")


def sources(fn: Function, opts: RenderOptions) -> list:
    out = []
    for t, name in names(fn):
        if isinstance(t, CronTrigger):
            out.append(_ping(fn, t, name, opts))
        elif isinstance(t, KafkaTrigger):
            out.append(kafka_source(fn, t, name, opts))
        else:
            out.append(_trigger(fn, t, name, opts))
    return out


def _ping(fn: Function, t: CronTrigger, name: str, opts: RenderOptions) -> dict:
    spec: dict = {"schedule": t.schedule}
    if t.timezone:
        spec["timezone"] = t.timezone
    if t.data is not None:
        spec["contentType"] = t.content_type
        spec["data"] = t.data
    spec["sink"] = common.service_ref(fn)
    return {"apiVersion": "sources.knative.dev/v1", "kind": "PingSource",
            "metadata": common.metadata(name, fn, opts), "spec": spec}


def kafka_source(fn: Function, t: KafkaTrigger, name: str, opts: RenderOptions, *, sink: dict | None = None,
                 default_delivery=None) -> dict:
    """sink: the function's Knative Service unless given. With a sink of its own (deployer
    keda) the source's own KEDA scaling stays off: the function's ScaledObject measures
    the same consumer group instead."""
    ann = None
    if t.lag_threshold is not None and sink is None:
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
    spec["sink"] = sink or common.service_ref(fn)
    delivery = common.delivery(t.delivery) or default_delivery
    if delivery:
        spec["delivery"] = delivery
    return {"apiVersion": "sources.knative.dev/v1beta1", "kind": "KafkaSource",
            "metadata": common.metadata(name, fn, opts, annotations=ann), "spec": spec}


def _trigger(fn: Function, t: EventTrigger, name: str, opts: RenderOptions) -> dict:
    spec: dict = {"broker": t.broker}
    if t.filter:  # without one the webhook stores `filter: {}`; `attributes: {}` would never compare equal
        spec["filter"] = {"attributes": dict(t.filter)}
    spec["subscriber"] = common.service_ref(fn)
    delivery = common.delivery(t.delivery)
    if delivery:
        spec["delivery"] = delivery
    return {
        "apiVersion": "eventing.knative.dev/v1",
        "kind": "Trigger",
        # The webhook adds the broker label; rendering it avoids a permanent diff.
        "metadata": common.metadata(name, fn, opts, extra_labels={"eventing.knative.dev/broker": t.broker}),
        "spec": spec,
    }
