"""Custom domains (`http.domain`): the DomainMapping and ClusterDomainClaim a render carries,
the names Knative would refuse (or that cannot work) refused first at their line, and two
folders claiming one name refused by `fnops validate` over the tree.

Knative's own webhook judges the renders in tests/test_conformance.py (render cases
`domain-*`, created and then updated); Argo CD's Lua VM judges the DomainMapping health
check there too."""

from __future__ import annotations

import os

import pytest
import yaml

import schemas
from conftest import ROOT, fnops

REPO = "registry.example.com/fns"
DIGEST = "sha256:" + "1" * 64


def make(root, name: str, body: str, envs=("dev", "prod")) -> str:
    """A function folder `name` under `root` with a pin for each of `envs`."""
    folder = os.path.join(str(root), name)
    os.makedirs(os.path.join(folder, "releases"), exist_ok=True)
    with open(os.path.join(folder, "function.yaml"), "w") as f:
        f.write(f"runtime: python3.12\nimage: {REPO}/{name}\n{body}")
    for env in envs:
        with open(os.path.join(folder, "releases", f"{env}.yaml"), "w") as f:
            f.write(f"image: {REPO}/{name}:sha-1111111@{DIGEST}\n")
    return folder


def render(folder: str, env: str, ns: str | None = "team-a", **platform):
    extra = {"ARGOCD_APP_NAMESPACE": ns} if ns else {}
    r = fnops("render", folder, "--env", env, env={**extra, **platform})
    assert r.returncode == 0, r.stderr
    return [o for o in yaml.safe_load_all(r.stdout) if o]


def kinds(objs, *wanted):
    return [o for o in objs if o["kind"] in wanted]


def test_a_domain_per_environment_renders_a_mapping_and_its_claim(tmp_path):
    folder = make(tmp_path, "fn", "environments:\n  prod:\n    http: {domain: api.example.com}\n")
    objs = render(folder, "prod")
    dm, claim = kinds(objs, "DomainMapping"), kinds(objs, "ClusterDomainClaim")
    assert len(dm) == 1 and len(claim) == 1
    dm, claim = dm[0], claim[0]
    assert dm["apiVersion"] == "serving.knative.dev/v1beta1"
    assert dm["metadata"]["name"] == "api.example.com" and dm["metadata"]["namespace"] == "team-a"
    # The mapping points at the Service this very render holds.
    svc = kinds(objs, "Service")[0]
    assert dm["spec"] == {"ref": {"apiVersion": svc["apiVersion"], "kind": "Service", "name": svc["metadata"]["name"],
                                  "namespace": "team-a"}}
    # Cluster-scoped: no metadata.namespace; the claim hands the name to the app's namespace.
    assert claim["apiVersion"] == "networking.internal.knative.dev/v1alpha1"
    assert claim["metadata"]["name"] == "api.example.com" and "namespace" not in claim["metadata"]
    assert claim["spec"] == {"namespace": "team-a"}
    for o in (dm, claim):
        assert schemas.validate(o) == [], o
        assert o["metadata"]["labels"]["fnops.dev/function"] == "fn"
        assert o["metadata"]["labels"]["fnops.dev/environment"] == "prod"
    # Only the environment whose overlay names it.
    assert kinds(render(folder, "dev"), "DomainMapping", "ClusterDomainClaim") == []


def test_tls_secret_from_the_folder_or_the_platform(tmp_path):
    folder = make(tmp_path, "fn", "http:\n  domain: {name: api.example.com, tlsSecret: api-cert}\n", envs=("prod",))
    dm = kinds(render(folder, "prod"), "DomainMapping")[0]
    assert dm["spec"]["tls"] == {"secretName": "api-cert"}
    assert schemas.validate(dm) == []

    plain = make(tmp_path, "plain", "http: {domain: www.example.com}\n", envs=("prod",))
    dm = kinds(render(plain, "prod", FNOPS_DOMAIN_TLS_SECRET="{domain}-tls"), "DomainMapping")[0]
    assert dm["spec"]["tls"] == {"secretName": "www.example.com-tls"}
    # A name the template would make too long for a Secret is refused at the field.
    long = make(tmp_path, "long", "http: {domain: " + ".".join(["a" * 61] * 4) + ".com}\n", envs=("prod",))  # 251
    r = fnops("render", long, "--env", "prod", env={"ARGOCD_APP_NAMESPACE": "t", "FNOPS_DOMAIN_TLS_SECRET": "{domain}-tls"})
    assert r.returncode == 2 and r.stderr.startswith(f"{long}/function.yaml:3:16: ") and "longer than 253" in r.stderr
    # Unset: the cluster's certificate setup (external-domain-tls) decides, so no spec.tls.
    assert "tls" not in kinds(render(plain, "prod"), "DomainMapping")[0]["spec"]


@pytest.mark.parametrize("claims", ["cluster", "none"])
def test_no_claim_where_the_cluster_or_its_admins_make_them(tmp_path, claims):
    folder = make(tmp_path, "fn", "http: {domain: api.example.com}\n", envs=("prod",))
    objs = render(folder, "prod", ns=None, FNOPS_DOMAIN_CLAIMS=claims)
    assert len(kinds(objs, "DomainMapping")) == 1 and kinds(objs, "ClusterDomainClaim") == []
    assert "namespace" not in kinds(objs, "DomainMapping")[0]["spec"]["ref"]  # Knative defaults it to its own


def test_a_claim_without_a_namespace_is_refused(tmp_path):
    folder = make(tmp_path, "fn", "http: {domain: api.example.com}\n", envs=("prod",))
    r = fnops("render", folder, "--env", "prod")
    assert r.returncode == 2 and r.stdout == "" and len(r.stderr.splitlines()) == 1, r.stderr
    assert "ClusterDomainClaim" in r.stderr and "ARGOCD_APP_NAMESPACE" in r.stderr


def test_cluster_local_functions_may_have_a_domain(tmp_path):
    """With cluster-local the Service has no public route: the domain is the only way in."""
    folder = make(tmp_path, "fn", "http: {visibility: cluster-local, domain: api.example.com}\n", envs=("prod",))
    objs = render(folder, "prod")
    assert kinds(objs, "Service")[0]["metadata"]["labels"]["networking.knative.dev/visibility"] == "cluster-local"
    assert len(kinds(objs, "DomainMapping")) == 1


LONG_LABEL = "a" * 64
BAD = {
    "upper-case": ("API.example.com", "upper-case letters"),
    "trailing-dot": ("api.example.com.", "ends with '.'"),
    "wildcard": ("'*.example.com'", "is a wildcard"),
    "one-label": ("localhost", "has one label"),
    "ipv4": ("10.0.0.1", "is an IP address"),
    "label-too-long": (f"{LONG_LABEL}.example.com", "each label of a DNS name has at most 63"),
    "too-long": (".".join(["a" * 60] * 4) + ".example.com", "a DNS name has at most 253"),
    "underscore": ("api_v1.example.com", "is not a DNS name"),
    "leading-dash": ("-api.example.com", "is not a DNS name"),
    "cluster-local-domain": ("fn.team-a.svc.cluster.local", "under the cluster's local domain 'cluster.local'"),
    "not-a-string": ("[a.example.com]", "expected a string"),
}


@pytest.mark.parametrize("case", BAD)
def test_names_that_cannot_be_mapped_are_refused_at_their_line(tmp_path, case):
    value, says = BAD[case]
    folder = make(tmp_path, "fn", f"environments:\n  prod:\n    http:\n      domain: {value}\n", envs=("prod",))
    r = fnops("render", folder, "--env", "prod", env={"ARGOCD_APP_NAMESPACE": "team-a"})
    assert r.returncode == 2 and r.stdout == "" and len(r.stderr.splitlines()) == 1, r.stderr
    assert r.stderr.startswith(f"{folder}/function.yaml:6:15: http.domain: "), r.stderr
    assert says in r.stderr, r.stderr


def test_the_platforms_cluster_domain_is_the_one_refused(tmp_path):
    folder = make(tmp_path, "fn", "http: {domain: api.corp.internal}\n", envs=("prod",))
    r = fnops("render", folder, "--env", "prod", env={"ARGOCD_APP_NAMESPACE": "t", "FNOPS_CLUSTER_DOMAIN": "corp.internal"})
    assert r.returncode == 2 and "under the cluster's local domain 'corp.internal'" in r.stderr
    assert len(kinds(render(folder, "prod"), "DomainMapping")) == 1  # cluster.local: an ordinary name


@pytest.mark.parametrize("body,line,col,says", [
    ("deployer: keda\nhttp: {domain: api.example.com}\nscale: {min: 1, metric: rps, target: 5}\n", 4, 16,
     "needs deployer: knative"),
    ("http: {visibility: none, domain: api.example.com}\ntriggers:\n  - event: {broker: default}\n", 3, 34,
     "event-only"),
    ("http: {domain: {tlsSecret: x}}\n", 3, 16, "http.domain.name: is required"),
    ("http: {domain: {name: api.example.com, tlsSecret: Not_A_Secret}}\n", 3, 51, "is not a Secret name"),
    ("http: {domain: {name: api.example.com, cert: x}}\n", 3, 40, "http.domain.cert: unknown key"),
])
def test_where_a_domain_cannot_apply_it_says_why(tmp_path, body, line, col, says):
    folder = make(tmp_path, "fn", body, envs=("prod",))
    r = fnops("render", folder, "--env", "prod", env={"ARGOCD_APP_NAMESPACE": "team-a"})
    assert r.returncode == 2 and r.stdout == "", r.stderr
    assert r.stderr.startswith(f"{folder}/function.yaml:{line}:{col}: ") and says in r.stderr, r.stderr


def test_the_platform_can_limit_which_domains_functions_map(tmp_path):
    allowed = {"ARGOCD_APP_NAMESPACE": "team-a", "FNOPS_ALLOWED_DOMAINS": "*.fn.example.com, fn.example.com"}
    ok = make(tmp_path, "ok", "http: {domain: orders.fn.example.com}\n", envs=("prod",))
    assert len(kinds(render(ok, "prod", **{k: v for k, v in allowed.items() if k != "ARGOCD_APP_NAMESPACE"}),
                     "DomainMapping")) == 1
    bad = make(tmp_path, "bad", "http: {domain: www.example.com}\n", envs=("prod",))
    r = fnops("render", bad, "--env", "prod", env=allowed)
    assert r.returncode == 2 and r.stderr.startswith(f"{bad}/function.yaml:3:16: ")
    assert "not a domain this platform lets functions map" in r.stderr and "*.fn.example.com" in r.stderr


@pytest.mark.parametrize("setting", ["FNOPS_DOMAIN_CLAIMS=auto", "FNOPS_DOMAIN_TLS_SECRET=Bad_Name",
                                     "FNOPS_CLUSTER_DOMAIN=not a domain"])
def test_bad_platform_settings_are_usage_errors(tmp_path, setting):
    key, _, value = setting.partition("=")
    folder = make(tmp_path, "fn", "", envs=("prod",))
    r = fnops("render", folder, "--env", "prod", env={key: value})
    assert r.returncode == 2 and r.stdout == "" and r.stderr.startswith(f"fnops: {key}="), r.stderr


# --- across folders ----------------------------------------------------------------------------

def test_validate_refuses_two_functions_claiming_one_domain(tmp_path):
    a = make(tmp_path / "functions", "orders", "environments:\n  prod:\n    http: {domain: api.example.com}\n")
    b = make(tmp_path / "functions", "payments", "environments:\n  dev: {}\n  prod:\n    http:\n"
                                                 "      domain: {name: api.example.com, tlsSecret: api}\n")
    make(tmp_path / "functions", "quiet", "environments:\n  prod:\n    http: {domain: quiet.example.com}\n")
    r = fnops("validate", str(tmp_path / "functions"))
    assert r.returncode == 2, r.stderr
    lines = r.stderr.splitlines()
    clash = [ln for ln in lines if "already claimed" in ln]
    assert len(clash) == 1, r.stderr
    # Both files, each at its line: the later claimant is the error, the first is named in it.
    assert clash[0].startswith(f"{b}/function.yaml:7:22: http.domain: 'api.example.com' (environment prod)")
    assert f"function 'orders' in environment prod at {a}/function.yaml:5:20" in clash[0]
    assert lines[-1] == "3 function(s) checked: 2 ok, 1 with problems"

    # One folder alone is fine: the CMP renders one folder and cannot see its siblings (on a
    # cluster the second DomainMapping stays DomainClaimed=False, and Argo CD shows Degraded).
    assert fnops("validate", b).returncode == 0
    assert len(kinds(render(b, "prod"), "DomainMapping")) == 1


def test_one_domain_inherited_by_every_environment_is_refused(tmp_path):
    folder = make(tmp_path, "fn", "http: {domain: api.example.com}\nenvironments:\n  staging: {}\n",
                  envs=("staging", "prod"))
    r = fnops("validate", folder)
    assert r.returncode == 2
    clash = [ln for ln in r.stderr.splitlines() if "already claimed" in ln]
    assert len(clash) == 1 and "(environment prod) is already claimed by this function in environment staging" \
        in clash[0], r.stderr
    # Per-environment names through the overlays: accepted.
    fixed = make(tmp_path, "fixed", "environments:\n  staging:\n    http: {domain: api.staging.example.com}\n"
                                    "  prod:\n    http: {domain: api.example.com}\n", envs=("staging", "prod"))
    r = fnops("validate", fixed)
    assert r.returncode == 0, r.stderr
    # Or one environment drops the inherited name.
    dropped = make(tmp_path, "dropped", "http: {domain: api.example.com}\nenvironments:\n  staging: {http: {domain: null}}\n",
                   envs=("staging", "prod"))
    assert fnops("validate", dropped).returncode == 0
    assert kinds(render(dropped, "staging"), "DomainMapping") == []
    assert len(kinds(render(dropped, "prod"), "DomainMapping")) == 1


def test_the_shipped_applicationset_will_not_hand_a_claimed_domain_to_a_second_app():
    """A ClusterDomainClaim is cluster-scoped and Knative lets its spec.namespace change: a
    second app rendering a claim for a taken name would move the domain on sync. Argo CD's
    FailOnSharedResource fails that sync instead (the object carries the first app's tracking)."""
    with open(os.path.join(ROOT, "argocd-cmp", "applicationset.yaml")) as f:
        spec = yaml.safe_load(f)["spec"]["template"]["spec"]
    assert "FailOnSharedResource=true" in spec["syncPolicy"]["syncOptions"]
