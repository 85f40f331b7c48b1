"""Every example, every environment: rendered by the real CLI, accepted by the CRD schemas
(unknown fields are errors) and by the webhook rules."""

import os

import pytest
import yaml

import schemas
import webhook_rules
from conftest import EXAMPLES, example_envs, example_functions, fnops

CASES = [(fn, env) for fn in example_functions() for env in example_envs(fn)]


def render(fn, env, **extra_env):
    r = fnops("render", os.path.join(EXAMPLES, fn), "--env", env, env=extra_env)
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    return r.stdout, list(yaml.safe_load_all(r.stdout))


def test_examples_cover_what_a_newcomer_needs():
    kinds = set()
    for fn, env in CASES:
        kinds |= {o["kind"] for o in render(fn, env)[1]}
    assert {"Service", "PingSource", "KafkaSource", "Trigger", "Deployment", "ScaledObject",
            "PrometheusRule", "PodMonitor", "ConfigMap"} <= kinds
    assert len(example_functions()) >= 6


@pytest.mark.parametrize("fn,env", CASES)
@pytest.mark.parametrize("ns", [None, "team-a"])
def test_example_passes_crd_schemas_and_webhook_rules(fn, env, ns):
    _, objs = render(fn, env, **({"ARGOCD_APP_NAMESPACE": ns} if ns else {}))
    assert objs
    for o in objs:
        assert schemas.validate(o) == [], o
        if ns:
            assert o["metadata"]["namespace"] == ns
        labels = o["metadata"]["labels"]
        assert labels["app.kubernetes.io/managed-by"] == "fnops"
        assert labels["fnops.dev/function"] == fn
        assert labels["fnops.dev/environment"] == env
    assert webhook_rules.check_all(objs) == []


@pytest.mark.parametrize("fn,env", CASES)
def test_render_is_byte_identical_across_runs(fn, env):
    first, _ = render(fn, env)
    second, _ = render(fn, env)
    assert first == second


def test_schema_check_catches_unknown_fields():
    """The checker itself must fail on what an API server would prune."""
    _, objs = render("hello", "dev")
    svc = objs[0]
    svc["spec"]["template"]["spec"]["containers"][0]["bogus"] = 1
    svc["spec"]["template"]["metadata"]["annotations"]["autoscaling.knative.dev/min-scale"] = 1
    errs = schemas.validate(svc)
    assert any("bogus" in e for e in errs) and any("min-scale" in e for e in errs)


def test_webhook_rules_catch_a_keda_object_aimed_at_knative():
    _, objs = render("hello", "dev")
    bad = {"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject", "metadata": {"name": "hello"},
           "spec": {"scaleTargetRef": {"name": "hello"}, "triggers": [{"type": "cpu", "metadata": {"value": "50"}}]}}
    errs = webhook_rules.check_all(objs + [bad])
    assert any("Knative workload" in e for e in errs)
