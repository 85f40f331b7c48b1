"""`deployer: keda` HTTP through the add-on's two routing APIs, chosen by the platform
(FNOPS_KEDA_HTTP_API on the CMP sidecar): HTTPScaledObject (default) or InterceptorRoute.
Upstream's part (KEDA's webhook on the ScaledObject, Argo CD's diff and health) is judged in
tests/test_conformance.py (render/keda-http-interceptorroute)."""

import yaml

import schemas
from conftest import fnops

SPEC = ("runtime: python3.12\ndeployer: keda\nhttp: {hosts: [fn.example.com]}\n"
        "scale: {min: 0, max: 5, metric: concurrency, target: 20, scaleDownDelay: 2m}\n")
IMAGE = "registry.example.com/fns/fn:sha-1111111@sha256:" + "1" * 64


def render(tmp_path, **env):
    folder = tmp_path / "fn"
    (folder / "releases").mkdir(parents=True)
    (folder / "function.yaml").write_text(SPEC)
    (folder / "releases" / "dev.yaml").write_text(f"image: {IMAGE}\n")
    return fnops("render", str(folder), "--env", "dev", env={"ARGOCD_APP_NAMESPACE": "functions-dev", **env})


def by_kind(out: str) -> dict:
    return {d["kind"]: d for d in yaml.safe_load_all(out) if d}


def test_default_platform_keeps_the_httpscaledobject(tmp_path):
    r = render(tmp_path)
    assert r.returncode == 0, r.stderr
    objs = by_kind(r.stdout)
    assert "InterceptorRoute" not in objs and objs["HTTPScaledObject"]["apiVersion"] == "http.keda.sh/v1alpha1"
    [trigger] = objs["ScaledObject"]["spec"]["triggers"]
    assert trigger["metadata"]["httpScaledObject"] == "fn"


def test_interceptorroute_routes_the_same_hosts_to_the_pods(tmp_path):
    default = by_kind(render(tmp_path / "a").stdout)
    r = render(tmp_path / "b", FNOPS_KEDA_HTTP_API="interceptorroute")
    assert r.returncode == 0, r.stderr
    objs = by_kind(r.stdout)
    route = objs["InterceptorRoute"]
    assert "HTTPScaledObject" not in objs
    assert schemas.validate(route) == []
    assert route["apiVersion"] == "http.keda.sh/v1beta1"
    # The same hosts and metric the HTTPScaledObject had, to the pods' own Service and port.
    assert route["spec"]["rules"] == [{"hosts": default["HTTPScaledObject"]["spec"]["hosts"]}]
    assert route["spec"]["scalingMetric"] == {"concurrency": {"targetValue": 20}}
    app = next(d for d in yaml.safe_load_all(r.stdout) if d["kind"] == "Service" and d["metadata"]["name"] == "fn-app")
    assert route["spec"]["target"] == {"service": "fn-app", "port": app["spec"]["ports"][0]["port"]}
    # The add-on's scaler finds the route by the trigger's `interceptorRoute`; replicas and
    # the scale-down delay live on the ScaledObject (an InterceptorRoute has neither).
    so = objs["ScaledObject"]["spec"]
    [trigger] = so["triggers"]
    assert trigger == {"type": "external-push", "metadata": {
        "scalerAddress": "keda-add-ons-http-external-scaler.keda:9090", "interceptorRoute": "fn"}}
    assert (so["minReplicaCount"], so["maxReplicaCount"], so["cooldownPeriod"]) == (0, 5, 120)
    # Everything else renders as before.
    rest = {k: v for k, v in objs.items() if k not in ("InterceptorRoute", "HTTPScaledObject", "ScaledObject")}
    assert rest == {k: v for k, v in default.items() if k in rest}


def test_the_routing_api_is_a_platform_setting(tmp_path):
    """An Application cannot pick it (ARGOCD_ENV_*), and a value the add-on has not is refused."""
    r = render(tmp_path / "a", ARGOCD_ENV_FNOPS_KEDA_HTTP_API="interceptorroute")
    assert r.returncode == 0 and "InterceptorRoute" not in by_kind(r.stdout)
    r = render(tmp_path / "b", FNOPS_KEDA_HTTP_API="httproute")
    assert r.returncode == 2 and r.stdout == "" and len(r.stderr.splitlines()) == 1, r.stderr
    assert "FNOPS_KEDA_HTTP_API='httproute' is not one of httpscaledobject, interceptorroute" in r.stderr
