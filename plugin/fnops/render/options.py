"""Render inputs that come from the CMP environment rather than the function folder."""

from __future__ import annotations

import os
from collections import namedtuple

from ..spec.platform import Platform

DEFAULT_HTTP_SCALER = "keda-add-ons-http-external-scaler.keda:9090"
# Where the HTTP add-on's interceptor proxy listens (its Helm chart's defaults).
DEFAULT_HTTP_INTERCEPTOR = "keda-add-ons-http-interceptor-proxy.keda.svc.cluster.local:8080"


class RenderOptions(namedtuple("RenderOptions", "namespace part_of keda_http_scaler platform keda_http_interceptor",
                               defaults=(None, "functions", DEFAULT_HTTP_SCALER, Platform(),
                                         DEFAULT_HTTP_INTERCEPTOR))):
    """platform: what the platform lets a folder ask for (wildcard hosts, Prometheus servers,
    secrets) and what it runs (the Knative metrics generation, where monitoring objects go):
    read from the sidecar's own environment only, see spec/platform.py."""

    __slots__ = ()

    @classmethod
    def from_environ(cls, environ=os.environ) -> "RenderOptions":
        """ARGOCD_APP_NAMESPACE and ARGOCD_ENV_FNOPS_* (set through the Application's
        `spec.source.plugin.env`). Plain FNOPS_* works too, for local runs. The platform's
        settings are never read from ARGOCD_ENV_*: whoever may edit an Application must not
        be able to loosen them, nor point its SLO alerts at metrics the cluster lacks."""

        def get(name: str, default):
            return environ.get(f"ARGOCD_ENV_{name}") or environ.get(name) or default

        if environ.get("ARGOCD_ENV_FNOPS_KNATIVE_METRICS"):
            from ..errors import UsageError

            # It used to be an Application setting; ignoring it silently would leave an
            # Application on other metrics than its author meant.
            raise UsageError("FNOPS_KNATIVE_METRICS is a platform setting: set it on the CMP sidecar "
                             "(argocd-cmp/repo-server), not in the Application's plugin env")
        ns = environ.get("ARGOCD_APP_NAMESPACE") or None
        if ns is not None:
            from ..spec.units import is_dns1123_label

            if not is_dns1123_label(ns):  # it is written into PromQL selectors as well as metadata
                from ..errors import UsageError
                from ..escape import shown

                raise UsageError(f"ARGOCD_APP_NAMESPACE='{shown(ns)}' is not a namespace name (lowercase DNS label)")
        return cls(
            namespace=ns,
            part_of=get("FNOPS_PART_OF", "functions"),
            keda_http_scaler=get("FNOPS_KEDA_HTTP_SCALER", DEFAULT_HTTP_SCALER),
            platform=Platform.from_environ(environ),
            keda_http_interceptor=_host_port("FNOPS_KEDA_HTTP_INTERCEPTOR",
                                             get("FNOPS_KEDA_HTTP_INTERCEPTOR", DEFAULT_HTTP_INTERCEPTOR)),
        )

    @property
    def interceptor(self) -> tuple:
        """(host, port) of the HTTP add-on's interceptor proxy."""
        host, _, port = self.keda_http_interceptor.rpartition(":")
        return host, int(port)


def _host_port(name: str, value: str) -> str:
    """A DNS name and a port: it becomes an ExternalName Service's target."""
    from ..spec.units import is_dns1123_subdomain

    host, sep, port = value.rpartition(":")
    if not sep or not is_dns1123_subdomain(host) or not port.isascii() or not port.isdigit() or len(port) > 5 \
            or not 1 <= int(port) <= 65535:
        from ..errors import UsageError
        from ..escape import shown

        raise UsageError(f"{name}='{shown(value)}' is not host:port (a lowercase DNS name and a port 1–65535, "
                         f"e.g. {DEFAULT_HTTP_INTERCEPTOR})")
    return value
