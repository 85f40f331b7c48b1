"""Knative Service: autoscaling annotations, a content-addressed revision name, traffic."""

from __future__ import annotations

import json

try:  # the builtin SHA-256 avoids loading OpenSSL through hashlib on every render
    from _sha256 import sha256
except ImportError:  # Python ≥ 3.12 names it _sha2
    try:
        from _sha2 import sha256
    except ImportError:  # pragma: no cover
        from hashlib import sha256

from ..spec.function import CANARY_TAG, REVISION_HASH_LEN, STABLE_TAG
from ..spec.model import Function, Release
from ..spec.units import format_number
from . import common
from .options import RenderOptions

KPA = "kpa.autoscaling.knative.dev"
HPA = "hpa.autoscaling.knative.dev"
A = "autoscaling.knative.dev/"
# What Knative's webhook writes when these are absent; rendering them keeps Argo CD in sync.
DEFAULT_PROBE = {"successThreshold": 1, "tcpSocket": {"port": 0}}


def autoscaling_annotations(fn: Function) -> dict:
    s = fn.scale
    ann = {A + "class": HPA if s.hpa_class else KPA}
    metric = s.metric
    if metric == "prometheus":
        # autoscaler-keda: a custom metric name plus the query that feeds it.
        ann[A + "metric"] = f"{fn.name.replace('-', '_')}_fnops"
        ann[A + "prometheus-query"] = s.prometheus_query
        ann[A + "prometheus-address"] = s.prometheus_address
    else:
        ann[A + "metric"] = metric
    if s.target is not None:
        ann[A + "target"] = format_number(s.target)
    # Only bounds the folder wrote: the platform's min-scale/max-scale defaults and its
    # max-scale-limit (which refuses max-scale 0) decide the rest.
    if s.min_set:
        ann[A + "min-scale"] = str(s.min)
    if s.max_set:
        ann[A + "max-scale"] = str(s.max)
    if s.initial is not None:
        ann[A + "initial-scale"] = str(s.initial)
    if s.window is not None:
        ann[A + "window"] = f"{s.window}s"
    if s.scale_down_delay is not None:
        ann[A + "scale-down-delay"] = f"{s.scale_down_delay}s"
    return ann


def revision_name(fn_name: str, template: dict) -> str:
    """`<fn>-<hash of the template>`: the same template always selects the same revision,
    so a rollback re-uses the revision that already ran, and any change gets a new name
    (Knative rejects template changes without a name change)."""
    body = {k: v for k, v in template.items() if k != "metadata"}
    md = {k: v for k, v in template["metadata"].items() if k != "name"}
    blob = json.dumps({"metadata": md, **body}, sort_keys=True, separators=(",", ":"))
    return f"{fn_name}-{sha256(blob.encode()).hexdigest()[:REVISION_HASH_LEN]}"


def service(fn: Function, release: Release, opts: RenderOptions) -> dict:
    extra_labels = {}
    if fn.visibility in ("cluster-local", "none"):
        # Event-only functions still receive events from inside the cluster.
        extra_labels["networking.knative.dev/visibility"] = "cluster-local"
    pod_labels = common.labels(fn, None)
    template = {
        "metadata": {"labels": pod_labels, "annotations": autoscaling_annotations(fn)},
        "spec": {
            "containerConcurrency": fn.concurrency,
            "timeoutSeconds": fn.timeout,
            "enableServiceLinks": False,
            "containers": [common.container(fn, str(release.image), name="user-container", probe=DEFAULT_PROBE)],
        },
    }
    rev = revision_name(fn.name, template)
    template["metadata"] = {"name": rev, **template["metadata"]}
    return {
        "apiVersion": "serving.knative.dev/v1",
        "kind": "Service",
        "metadata": common.metadata(fn.name, fn, opts, extra_labels=extra_labels),
        "spec": {"template": template, "traffic": traffic(fn, release, rev)},
    }


def traffic(fn: Function, release: Release, rev: str) -> list:
    """The stable side is the revision the previous pin recorded (what really ran); the canary
    gets the step the bridge last committed (`canary.step`), else traffic.canary; `promoted`
    ends the split. A rollback pin routes to the revision that ran, by name, when today's
    function.yaml would name the restored image's revision differently."""
    prev = release.previous_revision
    if release.rollback_of and release.revision and release.revision != rev:
        return [{"revisionName": release.revision, "latestRevision": False, "percent": 100}]
    if fn.canary is None or not prev or prev == rev or release.promoted:
        return [{"latestRevision": True, "percent": 100}]
    pct = release.canary_step or fn.canary
    return [
        {"revisionName": prev, "latestRevision": False, "percent": 100 - pct, "tag": STABLE_TAG},
        {"revisionName": rev, "latestRevision": False, "percent": pct, "tag": CANARY_TAG},
    ]
