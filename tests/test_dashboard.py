"""Issue 22: the Grafana dashboard `fnops render` writes per function — a ConfigMap the
Grafana sidecar loads — is dashboard JSON Grafana takes, and every panel's query is PromQL
that parses (promtool) and reads the series the queue-proxy really exports."""

from __future__ import annotations

import json
import os
import re

import jsonschema
import pytest
import yaml

import promtool
import schemas
from conftest import fnops
from queue_proxy_series import Pod, series
from test_slo import DEV, GENERATIONS, MINUTES, PROD, RELEASE_AT, failing, slow

REPO = "registry.example.com/fns/checkout"
D1, D2 = "sha256:" + "1" * 64, "sha256:" + "2" * 64
PIN = (f"image: {REPO}:sha-2222222@{D2}\n"
       f"previous: {{image: '{REPO}:sha-1111111@{D1}', revision: checkout-0badc0de}}\n"
       "source: {repo: acme/functions, commit: " + "a" * 40 + "}\n")
SPEC = "runtime: python3.12\nslo: {latencyP95: 300ms, errorRate: 1%}\ntraffic: {canary: 10}\n"
GRAFANA = ("dashboard", "timeseries", "text", "prometheus")  # grafana-foundation-sdk jsonschema/<name>.jsonschema.json


def render(tmp_path, spec=SPEC, pin=PIN, namespace=PROD, **platform) -> list[dict]:
    d = tmp_path / "checkout"
    (d / "releases").mkdir(parents=True, exist_ok=True)
    (d / "function.yaml").write_text(spec)
    (d / "releases" / "prod.yaml").write_text(pin)
    env = {"FNOPS_KNATIVE_METRICS": "otel", **platform}
    if namespace:
        env["ARGOCD_APP_NAMESPACE"] = namespace
    r = fnops("render", str(d), "--env", "prod", env=env)
    assert r.returncode == 0, r.stderr
    objs = list(yaml.safe_load_all(r.stdout))
    for o in objs:
        assert schemas.validate(o) == [], o
    return objs


def dashboards(objs) -> list[tuple[dict, str, dict]]:
    """(ConfigMap, data key, parsed dashboard) for each dashboard ConfigMap."""
    return [(o, key, json.loads(text)) for o in objs if o["kind"] == "ConfigMap" for key, text in o["data"].items()]


def grafana_problems(dash: dict) -> list[str]:
    """What Grafana needs of a provisioned dashboard, checked by hand (a schema checks the
    field names and types; this checks what ties them together)."""
    errs = []
    if not isinstance(dash.get("title"), str) or not dash["title"]:
        errs.append("no title")
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,40}", dash.get("uid", "")):
        errs.append(f"uid {dash.get('uid')!r}: 1-40 of [A-Za-z0-9_-]")
    if not isinstance(dash.get("schemaVersion"), int):
        errs.append("schemaVersion is not an integer")
    variables = {v["name"]: v for v in dash.get("templating", {}).get("list", [])}
    ids, cells = set(), set()
    for p in dash.get("panels", []):
        where = f"panel {p.get('id')} {p.get('title')!r}"
        if not isinstance(p.get("id"), int) or p["id"] in ids:
            errs.append(f"{where}: id missing or repeated")
        ids.add(p.get("id"))
        g = p.get("gridPos", {})
        if not all(isinstance(g.get(k), int) for k in "hwxy") or g["x"] + g["w"] > 24 or min(g["h"], g["w"]) < 1:
            errs.append(f"{where}: gridPos {g} outside the 24-column grid")
            continue
        mine = {(x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])}
        if mine & cells:
            errs.append(f"{where}: overlaps another panel")
        cells |= mine
        refs = [t.get("refId") for t in p.get("targets", [])]
        if len(set(refs)) != len(refs) or not all(refs):
            errs.append(f"{where}: refIds {refs} must be present and distinct")
        for t in p.get("targets", []):
            ds = t.get("datasource", p.get("datasource", {}))
            var = ds.get("uid", "")[2:-1] if ds.get("uid", "").startswith("${") else None
            if ds.get("type") != "prometheus" or var not in variables or variables[var]["type"] != "datasource":
                errs.append(f"{where}: datasource {ds} is not the dashboard's Prometheus variable")
            if not isinstance(t.get("expr"), str) or not t["expr"].strip():
                errs.append(f"{where}: empty query")
    return errs


def grafana_schemas() -> dict | None:
    d = os.path.join(schemas.schema_dir(), "apis", "grafana")
    if not os.path.isfile(os.path.join(d, "dashboard.jsonschema.json")):
        return None
    out = {}
    for name in GRAFANA:
        with open(os.path.join(d, f"{name}.jsonschema.json")) as f:
            out[name] = json.load(f)
    return out


def schema_problems(dash: dict, s: dict) -> list[str]:
    """The dashboard against Grafana's schema (as grafana-foundation-sdk publishes it), each
    panel's options and custom field config against its plugin's, each query against the
    Prometheus data source's."""

    def check(doc, schema, ref, where):
        v = jsonschema.Draft7Validator({**schema, "$ref": f"#/definitions/{ref}"})
        return [f"{where}/{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in v.iter_errors(doc)]

    errs = check(dash, s["dashboard"], "Dashboard", "dashboard")
    for p in dash["panels"]:
        where = f"panel {p['id']}"
        errs += check(p.get("options", {}), s[p["type"]], "Options", where + "/options")
        custom = p.get("fieldConfig", {}).get("defaults", {}).get("custom")
        if custom is not None:
            errs += check(custom, s[p["type"]], "FieldConfig", where + "/custom")
        for t in p.get("targets", []):
            errs += check(t, s["prometheus"], "Dataquery", where + "/targets")
    return errs


# -- the dashboard as Grafana reads it ----------------------------------------------------------


@pytest.mark.parametrize("generation", GENERATIONS)
def test_the_dashboard_is_a_configmap_the_grafana_sidecar_loads(tmp_path, generation):
    objs = render(tmp_path, FNOPS_KNATIVE_METRICS=generation)
    ((cm, key, dash),) = dashboards(objs)
    assert cm["metadata"]["namespace"] == PROD and cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert key == "fnops-functions-prod-checkout.json"  # unique across namespaces: the sidecar writes files by key
    assert grafana_problems(dash) == []
    titles = [p["title"] for p in dash["panels"]]
    assert titles == ["Release", "Requests / s by status", "Errors (5xx share)", "Latency", "Requests / s by revision",
                      "Replicas by revision", "Error budget burn rate", "Latency budget burn rate"]


def test_the_structure_check_catches_what_grafana_refuses(tmp_path):
    ((_, _, dash),) = dashboards(render(tmp_path))
    dash["uid"] = "x" * 41
    dash["panels"][2]["gridPos"]["x"] = 20
    dash["panels"][3]["targets"][0]["datasource"] = {"type": "prometheus", "uid": "${nope}"}
    dash["panels"][3]["targets"][1]["refId"] = "A"
    errs = grafana_problems(dash)
    assert len(errs) == 4 and "uid" in errs[0] and "grid" in errs[1] and "refIds" in errs[2] and "datasource" in errs[3]


def test_the_dashboard_passes_grafanas_schema(tmp_path):
    s = grafana_schemas()
    if s is None:
        pytest.skip("no Grafana schema in FNOPS_SCHEMA_DIR/apis/grafana (grafana-foundation-sdk jsonschema/)")
    ((_, _, dash),) = dashboards(render(tmp_path))
    assert schema_problems(dash, s) == []
    dash["panels"][1]["options"]["legend"]["placement"] = "middle"
    dash["panels"][1]["targets"][0]["exprr"] = "up"
    dash["refreshh"] = "1m"
    assert len(schema_problems(dash, s)) == 3  # the schema is strict enough to matter


def test_the_release_panel_names_the_current_and_previous_revision(tmp_path):
    objs = render(tmp_path)
    svc = next(o for o in objs if o["kind"] == "Service")
    ((_, _, dash),) = dashboards(objs)
    text = dash["panels"][0]["options"]["content"]
    current = svc["spec"]["template"]["metadata"]["name"]
    assert f"**Current revision** `{current}`" in text and f"sha-2222222@{D2}" in text
    assert "**Previous revision** `checkout-0badc0de`" in text and f"sha-1111111@{D1}" in text
    assert "Canary: 10%" in text and "acme/functions@aaaaaaaaaaaa" in text


# -- the queries -------------------------------------------------------------------------------


@pytest.mark.parametrize("generation", GENERATIONS)
def test_every_panel_query_parses(tmp_path, generation):
    ((_, _, dash),) = dashboards(render(tmp_path, FNOPS_KNATIVE_METRICS=generation))
    exprs = [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]
    assert len(exprs) == 15  # 1 + 1 + 3 percentiles + 1 + 1 + 4 windows × 2 burn rates
    r = promtool.check_queries(tmp_path, exprs)
    assert r.returncode == 0, r.stdout + r.stderr
    bad = promtool.check_queries(tmp_path, exprs + ['sum(rate(x[5m])) by (le'])
    assert bad.returncode != 0  # the parse is real


def ksm(namespace: str, revision: str, minutes: int) -> dict:
    """kube-state-metrics, as kube-prometheus-stack scrapes it (honorLabels)."""
    return {"series": f'kube_deployment_status_replicas_available{{container="kube-state-metrics", '
                      f'deployment="{revision}-deployment", endpoint="http", instance="10.0.9.9:8080", '
                      f'job="kube-state-metrics", namespace="{namespace}"}}', "values": f"2x{minutes}"}


@pytest.mark.parametrize("generation", GENERATIONS)
def test_the_panels_read_the_functions_series(tmp_path, generation):
    """Over the same series as the SLO tests, at a moment when prod fails every request and
    dev is healthy: each panel returns the function's series and none of its namesake's."""
    ((_, _, dash),) = dashboards(render(tmp_path, FNOPS_KNATIVE_METRICS=generation))
    rev = "checkout-1a2b3c4d"
    pods = [Pod("checkout", ns, rev, f"{rev}-deployment-7d9c8b6f5-x2k4p", ip)
            for ns, ip in ((PROD, "10.0.1.1"), (DEV, "10.0.2.1"))]
    inputs = series(generation, pods[0], MINUTES, failing) + series(generation, pods[1], MINUTES, slow)
    inputs += [ksm(PROD, rev, MINUTES), ksm(DEV, rev, MINUTES)]
    codes = ("2xx", "5xx") if generation == "opencensus" else ("200", "500", "503")
    revision = "revision_name" if generation == "opencensus" else "kn_revision_name"
    at = f"{RELEASE_AT + 10}m"  # ten minutes into the failing release: the 5m windows hold only 500s

    def q(title, i=0):
        return next(p for p in dash["panels"] if p["title"] == title)["targets"][i]["expr"]

    def labels(**kw):
        return "{" + ", ".join(f'{k}="{v}"' for k, v in kw.items()) + "}"

    checks = [
        # by status: every status code the pod has a series for (200 and 503 from before, 500 now)
        {"expr": f"count({q('Requests / s by status')})", "eval_time": at, "exp_samples": [{"labels": "{}", "value": len(codes)}]},
        {"expr": f"sum({q('Requests / s by status')})", "eval_time": at, "exp_samples": [{"labels": "{}", "value": 5}]},
        {"expr": q("Errors (5xx share)"), "eval_time": at, "exp_samples": [{"labels": "{}", "value": 1}]},
        {"expr": q("Requests / s by revision"), "eval_time": at,
         "exp_samples": [{"labels": labels(**{revision: rev}), "value": 5}]},
        {"expr": q("Replicas by revision"), "eval_time": at,
         "exp_samples": [{"labels": labels(deployment=f"{rev}-deployment"), "value": 2}]},
        # 5 minutes of nothing but errors: the 5m error burn is 1 / 1% = 100×
        {"expr": q("Error budget burn rate", 0), "eval_time": at, "exp_samples": [{"labels": "{}", "value": 100}]},
        # the 500s take 20 ms: no request of the last 5 minutes was slow
        {"expr": q("Latency budget burn rate", 0), "eval_time": at, "exp_samples": [{"labels": "{}", "value": 0}]},
        # 20 ms sits in the (0.01, 0.025] s or (10, 20] ms bucket; the panel speaks seconds either way
        {"expr": f"({q('Latency', 1)} > bool 0.01) * ({q('Latency', 1)} < bool 0.025)", "eval_time": at,
         "exp_samples": [{"labels": "{}", "value": 1}]},
    ]
    r = promtool.unit_tests(tmp_path, {}, [{"interval": "1m", "input_series": inputs, "promql_expr_test": checks}])
    assert r.returncode == 0, r.stdout[-6000:] + r.stderr[-2000:]


# -- where and whether ------------------------------------------------------------------------


def test_dashboard_label_namespace_and_off_switch_are_the_platforms(tmp_path):
    objs = render(tmp_path, FNOPS_DASHBOARDS="grafana_dashboard=fnops, team=payments",
                  FNOPS_DASHBOARD_NAMESPACE="monitoring")
    ((cm, _, _),) = dashboards(objs)
    assert cm["metadata"]["namespace"] == "monitoring"
    assert {k: cm["metadata"]["labels"][k] for k in ("grafana_dashboard", "team")} == {
        "grafana_dashboard": "fnops", "team": "payments"}
    assert dashboards(render(tmp_path, FNOPS_DASHBOARDS="none")) == []
    # An Application cannot switch them: ARGOCD_ENV_* is never the platform's.
    assert len(dashboards(render(tmp_path, ARGOCD_ENV_FNOPS_DASHBOARDS="none"))) == 1
    keda = render(tmp_path, spec="runtime: python3.12\ndeployer: keda\nscale: {min: 1}\n")
    assert dashboards(keda) == []  # no queue-proxy, no metrics to show


def test_two_namespaces_get_two_dashboards(tmp_path):
    ((_, k1, d1),) = dashboards(render(tmp_path))
    ((_, k2, d2),) = dashboards(render(tmp_path, namespace="functions-eu"))
    assert k1 != k2 and d1["uid"] != d2["uid"] and len(d1["uid"]) <= 40
