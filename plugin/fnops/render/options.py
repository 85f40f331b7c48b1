"""Render inputs that come from the CMP environment rather than the function folder."""

from __future__ import annotations

import os
from collections import namedtuple

METRIC_FAMILIES = ("otel", "opencensus")
DEFAULT_HTTP_SCALER = "keda-add-ons-http-external-scaler.keda:9090"


class RenderOptions(namedtuple("RenderOptions", "namespace part_of metrics keda_http_scaler",
                               defaults=(None, "functions", "otel", DEFAULT_HTTP_SCALER))):
    """metrics: Knative ≥ 1.18 exports queue-proxy request metrics through OpenTelemetry
    ("otel"); older clusters, or ones left on OpenCensus names, use the revision_* family."""

    __slots__ = ()

    @classmethod
    def from_environ(cls, environ=os.environ) -> "RenderOptions":
        """ARGOCD_APP_NAMESPACE and ARGOCD_ENV_FNOPS_* (set through the Application's
        `spec.source.plugin.env`). Plain FNOPS_* works too, for local runs."""

        def get(name: str, default):
            return environ.get(f"ARGOCD_ENV_{name}") or environ.get(name) or default

        ns = environ.get("ARGOCD_APP_NAMESPACE") or None
        metrics = get("FNOPS_KNATIVE_METRICS", "otel")
        if metrics not in METRIC_FAMILIES:
            from ..errors import UsageError

            raise UsageError(f"FNOPS_KNATIVE_METRICS='{metrics}' is not one of {', '.join(METRIC_FAMILIES)}")
        return cls(
            namespace=ns,
            part_of=get("FNOPS_PART_OF", "functions"),
            metrics=metrics,
            keda_http_scaler=get("FNOPS_KEDA_HTTP_SCALER", DEFAULT_HTTP_SCALER),
        )
