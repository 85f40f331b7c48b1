"""The admission rules from shared/reference/knative-keda-rules.md, written out
independently of the renderer: what real Knative / KEDA webhooks (or reconcilers) reject."""

from __future__ import annotations

import re

DNS1035 = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
A = "autoscaling.knative.dev/"
KEBAB = {"class", "metric", "target", "window", "activation-scale", "min-scale", "max-scale", "initial-scale",
         "target-utilization-percentage", "scale-down-delay", "panic-window-percentage",
         "panic-threshold-percentage", "scale-to-zero-pod-retention-period", "target-burst-capacity",
         # autoscaler-keda extension keys
         "prometheus-query", "prometheus-address", "trigger-prometheus-auth-name",
         "trigger-prometheus-auth-kind", "trigger-prometheus-auth-modes", "hpa-scale-up-rules",
         "hpa-scale-down-rules"}
RESERVED_PORTS = {8012, 8013, 8022, 9090, 9091, 8008}
RESERVED_ENV = {"PORT", "K_SERVICE", "K_CONFIGURATION", "K_REVISION"}


def _dur(v: str) -> int:
    m = re.fullmatch(r"(\d+)s", v)
    assert m, f"duration {v!r} not whole seconds"
    return int(m.group(1))


def knative_service(svc: dict) -> list[str]:
    e = []
    name = svc["metadata"]["name"]
    if not DNS1035.fullmatch(name) or len(name) > 63:
        e.append(f"service name {name!r} not DNS-1035")
    if any(k.startswith(A) for k in (svc["metadata"].get("annotations") or {})):
        e.append("autoscaling annotations on the Service's own metadata")
    for k in ("serving.knative.dev/creator", "serving.knative.dev/lastModifier"):
        if k in (svc["metadata"].get("annotations") or {}):
            e.append(f"renders immutable {k}")
    tmpl = svc["spec"]["template"]
    ann = tmpl["metadata"].get("annotations") or {}
    for k, v in ann.items():
        if not isinstance(v, str):
            e.append(f"annotation {k} value {v!r} is not a string")
        if k.startswith(A) and k[len(A):] not in KEBAB:
            e.append(f"annotation {k} is not a canonical kebab-case key")
    cls = ann.get(A + "class", "kpa.autoscaling.knative.dev")
    if cls.endswith(".knative.dev") and cls not in ("kpa.autoscaling.knative.dev", "hpa.autoscaling.knative.dev"):
        e.append(f"class {cls} rejected")
    metric = ann.get(A + "metric")
    if cls.startswith("kpa") and metric not in (None, "concurrency", "rps"):
        e.append(f"KPA metric {metric}")
    lo, hi = int(ann.get(A + "min-scale", "0")), int(ann.get(A + "max-scale", "0"))
    if lo < 0 or hi < 0 or (hi and hi < lo):
        e.append(f"min/max scale {lo}/{hi}")
    if cls.startswith("hpa") and lo < 1:
        e.append("HPA class cannot scale from zero (min-scale < 1)")
    if A + "target" in ann and float(ann[A + "target"]) < 0.01:
        e.append("target < 0.01")
    if A + "window" in ann and not 6 <= _dur(ann[A + "window"]) <= 3600:
        e.append("window out of 6s–1h")
    if A + "scale-down-delay" in ann and not 0 <= _dur(ann[A + "scale-down-delay"]) <= 3600:
        e.append("scale-down-delay out of 0–1h")
    if A + "initial-scale" in ann and int(ann[A + "initial-scale"]) < 1:
        e.append("initial-scale 0 needs allow-zero-initial-scale")
    rev = tmpl["metadata"].get("name")
    if rev is not None and (not rev.startswith(name + "-") or len(rev) > 63 or not DNS1035.fullmatch(rev)):
        e.append(f"revision name {rev!r}")
    spec = tmpl["spec"]
    if not 0 <= spec.get("containerConcurrency", 0) <= 1000:
        e.append("containerConcurrency out of 0–1000")
    if not 0 <= spec.get("timeoutSeconds", 300) <= 600:
        e.append("timeoutSeconds out of 0–600")
    for f in ("affinity", "nodeSelector", "tolerations", "initContainers", "securityContext"):
        if f in spec:
            e.append(f"feature-gated pod field {f}")
    ports = [p for c in spec["containers"] for p in c.get("ports", [])]
    if len(ports) > 1:
        e.append("more than one port")
    for p in ports:
        if p.get("name", "") not in ("", "h2c", "http1") or p.get("containerPort") in RESERVED_PORTS:
            e.append(f"bad port {p}")
    for c in spec["containers"]:
        if "lifecycle" in c:
            e.append("lifecycle")
        for env in c.get("env", []):
            if env["name"] in RESERVED_ENV:
                e.append(f"reserved env {env['name']}")
    traffic = svc["spec"].get("traffic", [])
    if traffic:
        if sum(t.get("percent", 0) for t in traffic) != 100:
            e.append("traffic percents do not sum to 100")
        tags = [t["tag"] for t in traffic if "tag" in t]
        if len(tags) != len(set(tags)):
            e.append("duplicate traffic tags")
        for t in traffic:
            if "configurationName" in t:
                e.append("configurationName in a Service")
            if bool(t.get("latestRevision")) == bool(t.get("revisionName")):
                e.append(f"latestRevision must be set exactly when revisionName is not: {t}")
            if "tag" in t and (not DNS1035.fullmatch(t["tag"]) or len(t["tag"]) + 1 + len(name) > 63):
                e.append(f"tag {t['tag']!r} too long with name")
    return e


def check_all(objs: list[dict]) -> list[str]:
    e = []
    ksvcs = {o["metadata"]["name"] for o in objs if o["kind"] == "Service" and o["apiVersion"].startswith("serving")}
    for o in objs:
        kind = o["kind"]
        if kind == "Service" and o["apiVersion"] == "serving.knative.dev/v1":
            e += knative_service(o)
        elif kind == "KafkaSource":
            if not o["spec"].get("consumerGroup"):
                e.append("KafkaSource without consumerGroup")
            ann = o["metadata"].get("annotations") or {}
            if any(k.startswith("keda.autoscaling.knative.dev/") or k == A + "class" for k in ann):
                e.append("mixes the eventing-autoscaler-keda annotation family")
        elif kind == "ScaledObject":
            target = o["spec"]["scaleTargetRef"]
            if target.get("kind", "Deployment") != "Deployment" or target["name"] in ksvcs:
                e.append("ScaledObject aimed at a Knative workload")
            if len(o["metadata"]["name"]) > 54:
                e.append("ScaledObject name > 54")
            nonresource = False
            for t in o["spec"]["triggers"]:
                if any(not isinstance(v, str) for v in t.get("metadata", {}).values()):
                    e.append(f"trigger metadata not strings: {t}")
                if t["type"] not in ("cpu", "memory"):
                    nonresource = True
                if t["type"] == "cron":
                    md = t["metadata"]
                    if not md.get("timezone") or int(md.get("desiredReplicas", "0")) <= 0:
                        e.append("cron trigger needs timezone and desiredReplicas > 0")
            if o["spec"].get("minReplicaCount", 0) == 0 and not nonresource:
                e.append("scale to zero needs a trigger other than cpu/memory")
        elif kind == "Deployment" and "replicas" in o["spec"]:
            e.append("Deployment with spec.replicas fights KEDA")
    return e
