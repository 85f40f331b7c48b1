"""Pieces every rendered object shares: metadata, labels, the container."""

from __future__ import annotations

from ..spec.model import Function
from .options import RenderOptions

FUNCTION_LABEL = "fnops.dev/function"
ENVIRONMENT_LABEL = "fnops.dev/environment"


def labels(fn: Function, opts: RenderOptions | None) -> dict:
    """Object labels; with opts=None the pod-template labels, which depend on the folder and
    environment only — the revision name hashes them, and `fnops bump` must compute the same
    name without knowing the CMP's settings."""
    out = {"app.kubernetes.io/name": fn.name}
    if opts is not None:
        out["app.kubernetes.io/part-of"] = opts.part_of
    out.update({"app.kubernetes.io/managed-by": "fnops", FUNCTION_LABEL: fn.name})
    if fn.environment:
        out[ENVIRONMENT_LABEL] = fn.environment
    return out


def metadata(name: str, fn: Function, opts: RenderOptions, *, extra_labels=None, annotations=None) -> dict:
    md: dict = {"name": name}
    if opts.namespace:
        md["namespace"] = opts.namespace
    md["labels"] = {**labels(fn, opts), **(extra_labels or {})}
    if annotations:
        md["annotations"] = annotations
    return md


def env_list(fn: Function, extra=()) -> list:
    return [{"name": k, "value": v} for k, v in (*extra, *fn.env)]


def env_from(fn: Function) -> list:
    return [{"secretRef": {"name": s}} for s in fn.secrets] + [
        {"configMapRef": {"name": c}} for c in fn.config_maps
    ]


def resources(fn: Function) -> dict | None:
    out = {}
    if fn.requests:
        out["requests"] = dict(fn.requests)
    if fn.limits:
        out["limits"] = dict(fn.limits)
    return out or None


def container(fn: Function, image: str, *, name: str, extra_env=(), ports=None, probe=None) -> dict:
    c: dict = {"name": name, "image": image}
    env = env_list(fn, extra_env)
    if env:
        c["env"] = env
    ef = env_from(fn)
    if ef:
        c["envFrom"] = ef
    if ports:
        c["ports"] = ports
    res = resources(fn)
    if res:
        c["resources"] = res
    if probe:
        c["readinessProbe"] = probe
    return c


def service_ref(fn: Function) -> dict:
    return {"ref": {"apiVersion": "serving.knative.dev/v1", "kind": "Service", "name": fn.name}}


def delivery(d) -> dict | None:
    """Eventing's DeliverySpec from a spec Delivery; None when it sets nothing."""
    if d is None:
        return None
    out: dict = {}
    if d.dead_letter is not None:
        out["deadLetterSink"] = ({"uri": d.dead_letter} if "://" in d.dead_letter else
                                 {"ref": {"apiVersion": "serving.knative.dev/v1", "kind": "Service", "name": d.dead_letter}})
    if d.retry is not None:
        out["retry"] = d.retry
    if d.backoff_policy is not None:
        out["backoffPolicy"] = d.backoff_policy
    if d.backoff_delay is not None:
        out["backoffDelay"] = d.backoff_delay
    return out or None
