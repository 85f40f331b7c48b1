"""Custom domains: `http.domain` in function.yaml and what the platform lets it name (the
check across function folders that two never claim one name: domain_conflicts.py).

A Knative DomainMapping (serving.knative.dev/v1beta1) maps the name to the function's
Service. Upstream's own rules (knative.dev/serving@v0.50.0, pkg/apis/serving/v1beta1/
domainmapping_validation.go) are checked here first, so a cluster never refuses the render:
the name is a fully qualified DNS name (IsFullyQualifiedDomainName: at least two labels) and
not under the cluster's local domain. fnops refuses a few names upstream would take but that
cannot work as a public domain: a trailing dot (the object's metadata.name could not hold
it), an IP address, a wildcard.

Platform settings (the CMP sidecar's own environment, never ARGOCD_ENV_*; see platform.py):

  FNOPS_DOMAIN_CLAIMS      render (default): fnops renders the ClusterDomainClaim a mapping
                           needs, as Knative's config-network ships with
                           autocreate-cluster-domain-claims: "false" (the AppProject must let
                           the app manage that cluster-scoped kind);
                           cluster: the cluster sets autocreate-cluster-domain-claims: "true"
                           and Knative creates (and deletes) the claim itself;
                           none: the platform's admins create claims out of band
  FNOPS_ALLOWED_DOMAINS    comma-separated patterns (fnmatch: `*.fn.example.com`) a domain
                           must match; unset: any name (then the claims decide)
  FNOPS_DOMAIN_TLS_SECRET  a Secret (in the app's namespace) that serves every domain,
                           `{domain}` standing for the name (e.g. `{domain}-tls`); unset: the
                           cluster's own certificate setup (external-domain-tls, usually
                           net-certmanager) or plain HTTP
  FNOPS_CLUSTER_DOMAIN     the cluster's local domain (default cluster.local)
"""

from __future__ import annotations

from collections import namedtuple

from ..errors import UsageError
from ..escape import shown
from .model import record

CLAIMS = ("render", "cluster", "none")
MAX_DOMAIN_PATTERNS = 64

# name: the DNS name; tls_secret: spec.tls.secretName, or None for the cluster's own setup.
Domain = record("Domain", "name tls_secret", tls_secret=None)


class DomainSettings(namedtuple("DomainSettings", "claims allowed tls_secret cluster_domain",
                                defaults=("render", (), None, "cluster.local"))):
    """What the platform decides about custom domains (see the module's docstring)."""

    __slots__ = ()

    @classmethod
    def from_environ(cls, environ) -> "DomainSettings":
        from .units import is_dns1123_subdomain

        claims = environ.get("FNOPS_DOMAIN_CLAIMS") or "render"
        if claims not in CLAIMS:
            raise UsageError(f"FNOPS_DOMAIN_CLAIMS='{shown(claims)}' is not one of {', '.join(CLAIMS)} (render: fnops "
                             "renders the ClusterDomainClaim; cluster: Knative's autocreate-cluster-domain-claims is on)")
        allowed = tuple(x.strip() for x in environ.get("FNOPS_ALLOWED_DOMAINS", "").split(",") if x.strip())
        if len(allowed) > MAX_DOMAIN_PATTERNS:
            raise UsageError(f"FNOPS_ALLOWED_DOMAINS: {len(allowed)} patterns; at most {MAX_DOMAIN_PATTERNS}")
        secret = environ.get("FNOPS_DOMAIN_TLS_SECRET") or None
        if secret is not None and not is_dns1123_subdomain(secret.replace("{domain}", "a.example.com")):
            raise UsageError(f"FNOPS_DOMAIN_TLS_SECRET='{shown(secret)}' is not a Secret name (a lowercase DNS "
                             "name; '{domain}' stands for the mapped name, e.g. {domain}-tls)")
        local = environ.get("FNOPS_CLUSTER_DOMAIN") or "cluster.local"
        if not is_dns1123_subdomain(local):
            raise UsageError(f"FNOPS_CLUSTER_DOMAIN='{shown(local)}' is not a DNS name (e.g. cluster.local)")
        return cls(claims, allowed, secret, local)

    def secret_for(self, domain: str) -> str | None:
        return self.tls_secret.replace("{domain}", domain) if self.tls_secret else None


def dns_name_problem(name: str, cluster_domain: str) -> str | None:
    """Why `name` cannot be a DomainMapping's name, or None."""
    from .units import is_dns1123_label, is_dns1123_subdomain

    example = "(e.g. api.example.com)"
    if name.endswith("."):
        return f"'{shown(name)}' ends with '.'; write it without (Kubernetes object names cannot hold the dot)"
    if "*" in name:
        return f"'{shown(name)}' is a wildcard; a DomainMapping maps one name {example}"
    if name != name.lower():
        return f"'{shown(name)}' has upper-case letters; DNS names are lowercase here ('{shown(name.lower())}')"
    if len(name) > 253:
        return f"'{shown(name)}' is {len(name)} characters; a DNS name has at most 253"
    labels = name.split(".")
    long = next((label for label in labels if len(label) > 63), None)
    if long is not None:
        return f"'{shown(long)}' is {len(long)} characters; each label of a DNS name has at most 63"
    if not is_dns1123_subdomain(name) or not all(is_dns1123_label(label) for label in labels):
        return (f"'{shown(name)}' is not a DNS name: lowercase letters, digits, '-' between labels and '.' "
                f"between them {example}")
    if len(labels) < 2:
        return f"'{shown(name)}' has one label; Knative maps fully qualified names only {example}"
    if labels[-1].isdigit():  # no top-level domain is numeric: this is an address
        return f"'{shown(name)}' is an IP address; a DomainMapping maps a DNS name {example}"
    if name == cluster_domain or name.endswith("." + cluster_domain):
        return (f"'{shown(name)}' is under the cluster's local domain '{shown(cluster_domain)}'; Knative refuses "
                "those (they are the cluster's own service names)")
    return None


def check_domain(c, value, *, deployer: str, visibility: str, settings: DomainSettings) -> Domain | None:
    """`http.domain`: a name, or {name, tlsSecret}."""
    from .units import is_dns1123_subdomain

    p = ("http", "domain")
    if value is None:
        return None
    if isinstance(value, dict):
        m = c.mapping(p, value, ("name", "tlsSecret"))
        name = c.typed(p + ("name",), m.get("name"), str)
        if "name" not in m:
            c.fail(p + ("name",), "is required: the DNS name to map (e.g. api.example.com)")
        secret = c.typed(p + ("tlsSecret",), m.get("tlsSecret"), str)
        if secret is not None and not is_dns1123_subdomain(secret):
            c.fail(p + ("tlsSecret",), f"'{shown(secret)}' is not a Secret name (lowercase DNS subdomain)")
            secret = None
        np = p + ("name",)
    else:
        name, secret, np = c.typed(p, value, str), None, p
    if name is None:
        return None
    why = dns_name_problem(name, settings.cluster_domain)
    if why:
        c.fail(np, why)
        return None
    if deployer != "knative":
        c.fail(p, "a custom domain is a Knative DomainMapping and needs deployer: knative (with deployer keda, "
                  "route the name with http.hosts)")
        return None
    if visibility == "none":
        c.fail(p, "http.visibility none makes the function event-only; a domain needs public or cluster-local "
                  "(with cluster-local, the domain is the only public way in)")
        return None
    if settings.allowed:
        from fnmatch import fnmatchcase  # only where the platform keeps an allow-list

        if not any(fnmatchcase(name, pattern) for pattern in settings.allowed):
            c.fail(np, f"'{shown(name)}' is not a domain this platform lets functions map (FNOPS_ALLOWED_DOMAINS: "
                       f"{shown(', '.join(settings.allowed), 120)})")
            return None
    secret = secret or settings.secret_for(name)
    if secret is not None and not is_dns1123_subdomain(secret):  # the platform's template over a long name
        c.fail(np, f"the TLS Secret name for '{shown(name)}' (FNOPS_DOMAIN_TLS_SECRET={shown(settings.tls_secret)}) "
                   "would be longer than 253 characters; use a shorter name or name a Secret in http.domain.tlsSecret")
        return None
    return Domain(name, secret)
