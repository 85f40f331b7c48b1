"""Issue 22: the SLO alerts `fnops render` writes fire on the series Knative really exports,
for each metrics generation, and only when they should — evaluated by Prometheus' own
promtool over series shaped as tests/queue_proxy_series.py describes.

One function, `checkout` (errors ≤ 1%, p95 ≤ 300ms), pinned in prod (namespace
functions-prod) and dev (functions-dev); both environments' rules are loaded together, so
every check names the complete set of alerts firing at that moment. Two hours of healthy
traffic come first: the long windows then hold a history, as after any release.
"""

from __future__ import annotations

import pytest
import yaml

import promtool
import schemas
from conftest import fnops
from queue_proxy_series import Pod, series

GENERATIONS = ("otel", "otel-1.19", "opencensus")
REPO = "registry.example.com/fns/checkout"
PIN = f"image: {REPO}:sha-1111111@sha256:{'1' * 64}\n"
SPEC = "runtime: python3.12\nslo: {latencyP95: 300ms, errorRate: 1%}\n"
RELEASE_AT = 120  # minute the new release starts serving
MINUTES = 240
PROD, DEV = "functions-prod", "functions-dev"


def folder(tmp_path, spec=SPEC):
    d = tmp_path / "checkout"
    (d / "releases").mkdir(parents=True)
    (d / "function.yaml").write_text(spec)
    for env in ("prod", "dev"):
        (d / "releases" / f"{env}.yaml").write_text(PIN)
    return d


def rendered(d, env: str, namespace: str, **platform) -> list[dict]:
    r = fnops("render", str(d), "--env", env, env={"ARGOCD_APP_NAMESPACE": namespace, **platform})
    assert r.returncode == 0, r.stderr
    objs = list(yaml.safe_load_all(r.stdout))
    for o in objs:
        assert schemas.validate(o) == [], o  # the CRDs' schemas, unknown fields refused
    return objs


def rule_groups(d, generation: str, **platform) -> dict:
    files = {}
    for env, ns in (("prod", PROD), ("dev", DEV)):
        (rule,) = [o for o in rendered(d, env, ns, FNOPS_KNATIVE_METRICS=generation, **platform)
                   if o["kind"] == "PrometheusRule"]
        assert rule["metadata"]["namespace"] == ns
        files[f"{env}.yaml"] = rule["spec"]["groups"]
    return files


@pytest.mark.parametrize("generation", GENERATIONS)
def test_the_rendered_rules_pass_promtool_check(tmp_path, generation):
    for name, groups in rule_groups(folder(tmp_path), generation).items():
        (tmp_path / name).write_text(yaml.safe_dump({"groups": groups}, sort_keys=False))
        r = promtool.run("check", "rules", str(tmp_path / name))
        # the four burn alerts, and the scale-to-zero rule of the scaling history (test_scaling_history.py)
        assert r.returncode == 0 and "SUCCESS: 5 rules found" in r.stdout, r.stdout + r.stderr


# -- traffic: (status, latency in seconds, requests) per minute and pod ----------------------


def healthy(m):
    # 300 requests a minute at 40 ms, and a 5xx now and then (well inside a 1% budget)
    return [(200, 0.04, 299), (503, 0.01, 1)] if m % 4 == 0 else [(200, 0.04, 300)]


def failing(m):
    return healthy(m) if m < RELEASE_AT else [(500, 0.02, 300)]


def slow(m):
    return healthy(m) if m < RELEASE_AT else [(200, 1.2, 300)]


def night(m):
    """One request every ten minutes; an old 5xx (its series exists since) and one new one."""
    if m % 10:
        return []
    return [(500, 0.05, 1)] if m in (30, 150) else [(200, 0.04, 1)]


def pods(namespace: str, scrape="podmonitor", prefix="10.0.1"):
    rev = "checkout-1a2b3c4d"
    return [Pod("checkout", namespace, rev, f"{rev}-deployment-7d9c8b6f5-{s}", f"{prefix}.{i}", scrape)
            for i, s in ((1, "x2k4p"), (2, "q8w3z"))]


def inputs(generation, traffic_by_ns: dict, scrape="podmonitor", normalized_le=False) -> list:
    out = []
    for ns, traffic in traffic_by_ns.items():
        for pod in pods(ns, scrape, "10.0.1" if ns == PROD else "10.0.2"):
            out += series(generation, pod, MINUTES, traffic, normalized_le)
    return out


# -- expectations ----------------------------------------------------------------------------

ALERT = {"FnopsErrorBudgetFastBurn": ("errors", "fast", "rollback", "critical"),
         "FnopsErrorBudgetSlowBurn": ("errors", "slow", "notify", "warning"),
         "FnopsLatencyBudgetFastBurn": ("latency", "fast", "rollback", "critical"),
         "FnopsLatencyBudgetSlowBurn": ("latency", "slow", "notify", "warning")}


def firing(minute: int, *names: str, env="prod", only="") -> dict:
    """A promql_expr_test: at `minute`, exactly these alerts of `env` fire (and nothing else
    among the alerts `only` selects)."""
    ns = PROD if env == "prod" else DEV
    samples = []
    for name in names:
        slo, burn, action, severity = ALERT[name]
        labels = {"alertname": name, "alertstate": "firing", "fnops_action": action, "fnops_burn": burn,
                  "fnops_environment": env, "fnops_function": "checkout", "fnops_slo": slo, "namespace": ns,
                  "severity": severity}
        samples.append({"labels": "ALERTS{" + ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}",
                        "value": 1})
    where = ", ".join(['alertstate="firing"'] + ([only] if only else []))
    return {"expr": f"ALERTS{{{where}}}", "eval_time": f"{minute}m", "exp_samples": samples}


def case(input_series, *checks) -> dict:
    return {"interval": "1m", "input_series": input_series, "promql_expr_test": list(checks)}


def passes(tmp_path, rule_files, *cases):
    r = promtool.unit_tests(tmp_path, rule_files, list(cases))
    assert r.returncode == 0, r.stdout[-6000:] + r.stderr[-2000:]


# -- the Done-when, per generation ------------------------------------------------------------


@pytest.mark.parametrize("generation", GENERATIONS)
def test_a_broken_release_fires_the_fast_burn_within_minutes(tmp_path, generation):
    rules = rule_groups(folder(tmp_path), generation)
    passes(tmp_path, rules, case(
        inputs(generation, {PROD: failing, DEV: healthy}),
        firing(RELEASE_AT + 5),  # pending: 5 minutes of errors are 8% of the last hour, under 14.4%
        # Fifteen minutes after the release, inside the bridge's default 15-minute bake time.
        firing(RELEASE_AT + 15, "FnopsErrorBudgetFastBurn", "FnopsErrorBudgetSlowBurn"),
    ))


@pytest.mark.parametrize("generation", GENERATIONS)
@pytest.mark.parametrize("normalized_le", [False, True], ids=["text-le", "prometheus3-le"])
def test_a_slow_release_fires_the_latency_burn(tmp_path, generation, normalized_le):
    """Every request 1.2 s against p95 ≤ 300 ms: 5% of requests may be slow, so the fast
    pair (14.4×) needs 72% slow over the last hour — 44 minutes — and the slow pair (6×,
    30% over 6 h) later still. Prometheus 3 stores `le="1.0"` where the text says "1"."""
    rules = rule_groups(folder(tmp_path), generation)
    passes(tmp_path, rules, case(
        inputs(generation, {PROD: slow, DEV: healthy}, normalized_le=normalized_le),
        firing(RELEASE_AT + 40),
        firing(RELEASE_AT + 48, "FnopsLatencyBudgetFastBurn"),
        firing(RELEASE_AT + 65, "FnopsLatencyBudgetFastBurn", "FnopsLatencyBudgetSlowBurn"),
    ))


@pytest.mark.parametrize("generation", GENERATIONS)
def test_healthy_and_low_traffic_fire_nothing(tmp_path, generation):
    rules = rule_groups(folder(tmp_path), generation)
    passes(tmp_path, rules,
           case(inputs(generation, {PROD: healthy, DEV: healthy}), *(firing(m) for m in (30, 90, 150, 200, 240))),
           # The one 5xx at minute 150 is 100% of the last 5 minutes and 17% of the last hour.
           case(inputs(generation, {PROD: night, DEV: night}), *(firing(m) for m in (151, 152, 153, 160))))


@pytest.mark.parametrize("generation", GENERATIONS)
def test_the_minimum_request_rate_is_what_keeps_the_night_quiet(tmp_path, generation):
    """The same night with `minRate: 0`: the single error alone would roll the release back."""
    rules = rule_groups(folder(tmp_path, SPEC.replace("}", ", minRate: 0}")), generation)
    passes(tmp_path, rules, case(
        inputs(generation, {PROD: night, DEV: healthy}),
        firing(152, "FnopsErrorBudgetFastBurn", only='fnops_burn="fast"'),
    ))


@pytest.mark.parametrize("generation", GENERATIONS)
@pytest.mark.parametrize("scrape", ["podmonitor", "none"])
def test_a_broken_namesake_in_another_namespace_fires_only_its_own_alerts(tmp_path, generation, scrape):
    """checkout in dev fails every request; checkout in prod is healthy. With fnops'
    PodMonitor and with a platform's own scrape job (no `namespace` label to lean on), the
    prod rules stay quiet and dev's fire."""
    platform = {"FNOPS_QUEUE_PROXY_SCRAPE": scrape}
    rules = rule_groups(folder(tmp_path), generation, **platform)
    passes(tmp_path, rules, case(
        inputs(generation, {PROD: healthy, DEV: failing}, scrape=scrape),
        firing(RELEASE_AT + 15, "FnopsErrorBudgetFastBurn", "FnopsErrorBudgetSlowBurn", env="dev"),
        firing(RELEASE_AT + 15, only=f'namespace="{PROD}"'),
    ))


# -- what the bridge does with them -----------------------------------------------------------


def test_the_bridge_rolls_back_on_the_fast_burns_only(tmp_path):
    """The rendered rules' own labels, as Alertmanager would post them: the bridge's
    rollback sink takes the fast burns and turns the slow ones down (they still reach
    Slack and the audit log as alert events)."""
    import os

    from conftest import ROOT
    from fnops.bridge import origin
    from fnops.bridge.config import Rollback
    from fnops.bridge.events import SLO_ALERTS, from_alertmanager
    from fnops.bridge.sinks.rollback import RollbackSink

    (rule,) = [o for o in rendered(folder(tmp_path), "prod", PROD) if o["kind"] == "PrometheusRule"]
    sink = RollbackSink(None, Rollback(900, SLO_ALERTS, ()), None)
    decided = {}
    for r in rule["spec"]["groups"][0]["rules"]:
        body = {"version": "4", "status": "firing", "groupKey": "{}:{}", "alerts": [
            {"status": "firing", "labels": {"alertname": r["alert"], **r["labels"]},
             "annotations": r["annotations"], "startsAt": "2026-11-22T10:00:00Z", "fingerprint": r["alert"]}]}
        (event,) = from_alertmanager(body, admit=origin.DEFAULT.alert)  # the namespace check lets them all in
        decided[r["alert"]] = sink._not_an_slo_alert(event)
    assert decided == {"FnopsErrorBudgetFastBurn": None, "FnopsLatencyBudgetFastBurn": None,
                       "FnopsErrorBudgetSlowBurn": "not an fnops SLO alert that rolls back (rollback.alertNames: "
                                                   "the fast burns)",
                       "FnopsLatencyBudgetSlowBurn": "not an fnops SLO alert that rolls back (rollback.alertNames: "
                                                     "the fast burns)"}
    assert all(r["labels"]["fnops_action"] == ("rollback" if r["alert"] in SLO_ALERTS else "notify")
               for r in rule["spec"]["groups"][0]["rules"])
    with open(os.path.join(ROOT, "notifications", "bridge-config.yaml")) as f:
        assert tuple(yaml.safe_load(f)["rollback"]["alertNames"]) == SLO_ALERTS


# -- where the rules go, and what a folder may ask ----------------------------------------------


def test_rule_labels_and_placement_are_the_platforms(tmp_path):
    """kube-prometheus-stack loads PrometheusRules and PodMonitors labelled release=<its name>;
    a platform whose Prometheus reads one namespace puts them there."""
    d = folder(tmp_path)
    objs = rendered(d, "prod", PROD, FNOPS_RULE_LABELS="release=kube-prometheus-stack",
                    FNOPS_RULE_NAMESPACE="monitoring")
    mon = {o["kind"]: o for o in objs if o["apiVersion"] == "monitoring.coreos.com/v1"}
    assert set(mon) == {"PrometheusRule", "PodMonitor"}
    for o in mon.values():
        assert o["metadata"]["namespace"] == "monitoring" and o["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert mon["PodMonitor"]["spec"] == {
        "selector": {"matchLabels": {"serving.knative.dev/service": "checkout"}},
        "namespaceSelector": {"matchNames": [PROD]},
        "podMetricsEndpoints": [{"port": "http-usermetric", "path": "/metrics"}]}
    for r in mon["PrometheusRule"]["spec"]["groups"][0]["rules"]:
        assert r["labels"]["namespace"] == PROD and f'k8s_namespace_name="{PROD}"' in r["expr"]
    assert all(o["metadata"]["namespace"] == PROD for o in objs if o["apiVersion"] != "monitoring.coreos.com/v1")
    assert not any(o["kind"] == "PodMonitor" for o in rendered(d, "prod", PROD, FNOPS_QUEUE_PROXY_SCRAPE="none"))
    # An Application cannot move them: ARGOCD_ENV_* is never the platform's.
    moved = rendered(d, "prod", PROD, ARGOCD_ENV_FNOPS_RULE_NAMESPACE="monitoring")
    assert {o["metadata"]["namespace"] for o in moved} == {PROD}


@pytest.mark.parametrize("name,value,message", [
    ("FNOPS_RULE_LABELS", "release", "FNOPS_RULE_LABELS: 'release' is not key=value with a Kubernetes label key"),
    ("FNOPS_RULE_LABELS", "fnops.dev/function=x", "FNOPS_RULE_LABELS: 'fnops.dev/function' is a label fnops sets"),
    ("FNOPS_RULE_NAMESPACE", "Monitoring", "FNOPS_RULE_NAMESPACE='Monitoring' is not a namespace name"),
    ("FNOPS_QUEUE_PROXY_SCRAPE", "servicemonitor", "is not one of podmonitor, none"),
    ("FNOPS_DASHBOARDS", "grafana_dashboard=a b", "FNOPS_DASHBOARDS: 'a b' is not a Kubernetes label value"),
])
def test_a_bad_platform_setting_is_one_line_and_exit_2(tmp_path, name, value, message):
    r = fnops("render", str(folder(tmp_path)), "--env", "prod", env={name: value})
    assert r.returncode == 2 and r.stdout == "" and r.stderr.count("\n") == 1 and message in r.stderr, r.stderr


@pytest.mark.parametrize("slo,platform,where,message", [
    ("{errorRate: 10%}", {}, "2:18", "errorRate: at most 6.94%: above that even a function failing every request "
                                     "burns the budget slower than 14.4×"),
    ("{latencyP95: 20s}", {}, "2:19", "latencyP95: at most 10s: the queue-proxy's latency histogram "
                                      "(FNOPS_KNATIVE_METRICS=otel) has no bucket above that"),
    ("{errorRate: 1%, minRate: -1}", {}, "2:31", "minRate: -1 is out of range"),
    ("{errorRate: 1%, for: 0s}", {}, "2:27", "for: '0s' must be a positive whole number of seconds"),
])
def test_an_slo_no_alert_could_honour_is_refused(tmp_path, slo, platform, where, message):
    d = folder(tmp_path, f"runtime: python3.12\nslo: {slo}\n")
    r = fnops("render", str(d), "--env", "prod", env=platform)
    assert r.returncode == 2 and r.stdout == "" and r.stderr.count("\n") == 1, r.stderr
    assert r.stderr.startswith(f"{d}/function.yaml:{where}: slo.{message}"), r.stderr


def test_opencensus_buckets_reach_further(tmp_path):
    """≤ 1.18 measures up to 100 s, in milliseconds: a 20 s objective is a bucket there."""
    d = folder(tmp_path, "runtime: python3.12\nslo: {latencyP95: 20s}\n")
    (rule,) = [o for o in rendered(d, "prod", PROD, FNOPS_KNATIVE_METRICS="opencensus") if o["kind"] == "PrometheusRule"]
    assert 'revision_request_latencies_bucket{le=~"20000|20000.0"' in rule["spec"]["groups"][0]["rules"][0]["expr"]


def test_the_shipped_sidecar_settings_are_ones_render_takes():
    import os

    from conftest import ROOT
    from fnops.spec.platform import Platform

    with open(os.path.join(ROOT, "argocd-cmp", "repo-server", "sidecar-patch.yaml")) as f:
        (c,) = yaml.safe_load(f)["spec"]["template"]["spec"]["containers"]
    p = Platform.from_environ({e["name"]: e["value"] for e in c["env"]})
    assert (p.knative_metrics, p.rule_labels) == ("otel", (("release", "kube-prometheus-stack"),))


def test_the_applications_namespace_must_be_a_namespace_name(tmp_path):
    """It is written into every selector: a quote in it would rewrite the PromQL."""
    r = fnops("render", str(folder(tmp_path)), "--env", "prod", env={"ARGOCD_APP_NAMESPACE": 'x"} or vector(1) #'})
    assert r.returncode == 2 and r.stdout == "" and "ARGOCD_APP_NAMESPACE=" in r.stderr and r.stderr.count("\n") == 1
