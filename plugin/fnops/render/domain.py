"""Custom domains: a Knative DomainMapping to the function's Service, and the
ClusterDomainClaim that lets it take the name when the cluster does not create claims itself.

What Knative does with them (knative.dev/serving@v0.50.0, pkg/reconciler/domainmapping):
the DomainMapping becomes Ready only once its namespace owns a ClusterDomainClaim of the
same name — created by Knative when config-network's autocreate-cluster-domain-claims is
"true", otherwise by whoever may create cluster-scoped objects (here: this render, when the
platform says FNOPS_DOMAIN_CLAIMS=render). TLS: spec.tls.secretName serves a Secret the
team or the platform provides; without it, external-domain-tls (net-certmanager) issues a
certificate for the name, or the mapping serves plain HTTP.

One folder's render cannot see its siblings: two folders claiming one name are refused by
`fnops validate` over the tree; on a cluster the second DomainMapping stays Ready=False
(DomainClaimed=False, "namespace … does not own ClusterDomainClaim") and Argo CD shows it
Degraded through the health check fnops ships.
"""

from __future__ import annotations

from ..errors import UsageError
from ..spec.model import Function
from . import common
from .options import RenderOptions

DOMAIN_MAPPING = "serving.knative.dev/v1beta1"
DOMAIN_CLAIM = "networking.internal.knative.dev/v1alpha1"


def objects(fn: Function, opts: RenderOptions) -> list[dict]:
    if fn.domain is None:
        return []
    d = fn.domain
    ref = {"apiVersion": "serving.knative.dev/v1", "kind": "Service", "name": fn.name}
    if opts.namespace:
        ref["namespace"] = opts.namespace  # what Knative's defaulting fills in anyway
    spec: dict = {"ref": ref}
    if d.tls_secret:
        spec["tls"] = {"secretName": d.tls_secret}
    out = [{"apiVersion": DOMAIN_MAPPING, "kind": "DomainMapping",
            "metadata": common.metadata(d.name, fn, opts), "spec": spec}]
    if opts.platform.domains.claims == "render":
        out.append(cluster_domain_claim(fn, opts))
    return out


def cluster_domain_claim(fn: Function, opts: RenderOptions) -> dict:
    """Cluster-scoped: no metadata.namespace; spec.namespace is who may map the name."""
    if not opts.namespace:
        raise UsageError(f"http.domain '{fn.domain.name}': a ClusterDomainClaim names the namespace the "
                         "DomainMapping lives in; set ARGOCD_APP_NAMESPACE (Argo CD sets it for the CMP), or have "
                         "the platform set FNOPS_DOMAIN_CLAIMS=cluster (Knative creates claims) or none")
    md = common.metadata(fn.domain.name, fn, opts._replace(namespace=None))
    return {"apiVersion": DOMAIN_CLAIM, "kind": "ClusterDomainClaim", "metadata": md,
            "spec": {"namespace": opts.namespace}}
