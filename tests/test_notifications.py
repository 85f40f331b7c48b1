"""notifications/: the Argo CD snippet renders valid JSON for real Applications, the
Kubernetes manifests are valid, and bridge configs are checked with file:line errors."""

import glob
import json
import os

import pytest
import yaml
from click.testing import CliRunner

import argocd_template
import schemas
from conftest import ROOT
from fnops.bridge.events import ARGOCD_EVENTS, from_argocd
from fnops.cli import cli

SAMPLES = ["operation-finished", "operation-running", "fakeapp-single-source", "fakeapp-multi-source", "diff-cache"]


@pytest.mark.parametrize("sample", SAMPLES)
def test_template_renders_valid_json_the_bridge_accepts(sample):
    app = argocd_template.application(sample, function="hello", env="prod", revision="c" * 40, phase="Failed",
                                      health="Degraded", message='hook "db-migrate" failed:\n\ttimeout')
    body = json.loads(argocd_template.render(app))
    ev = from_argocd(body)
    assert (ev["function"], ev["environment"], ev["kind"], ev["revision"]) == ("hello", "prod", "sync-failed", "c" * 40)
    assert ev["message"] == 'hook "db-migrate" failed:\n\ttimeout'
    assert "argocdUrl" not in ev and ev["namespace"] == "functions-prod"  # links come from the bridge's config


def test_rollback_operations_are_marked():
    app = argocd_template.application("operation-finished", function="hello", env="prod", revision="c" * 40,
                                      phase="Succeeded", health="Degraded", rollback=True)
    assert from_argocd(json.loads(argocd_template.render(app)))["rollback"] is True


def test_a_sync_that_names_its_source_is_not_a_rollback():
    """Since Argo CD 3.2 every single-source sync sets operation.sync.source (F1)."""
    app = argocd_template.application("operation-finished", function="hello", env="prod", revision="c" * 40,
                                      phase="Succeeded", health="Degraded")
    app["status"]["operationState"]["operation"]["sync"]["source"] = {"repoURL": "https://github.com/acme/functions.git"}
    assert from_argocd(json.loads(argocd_template.render(app)))["rollback"] is False


TRIGGERS = {"fnops-on-sync-running": "fnops-sync-running", "fnops-on-deployed": "fnops-deployed",
            "fnops-on-health-degraded": "fnops-health-degraded", "fnops-on-sync-failed": "fnops-sync-failed",
            "fnops-on-render-failed": "fnops-render-failed"}


def test_notifications_cm_wires_webhook_and_triggers():
    data = argocd_template.configmap()["data"]
    svc = yaml.safe_load(data["service.webhook.fnops-bridge"])
    headers = {h["name"]: h["value"] for h in svc["headers"]}
    assert headers["Content-Type"] == "application/json" and headers["Authorization"] == "Bearer $fnops-bridge-token"
    with open(os.path.join(ROOT, "argocd-cmp", "applicationset.yaml")) as f:
        annotations = yaml.safe_load(f)["spec"]["template"]["metadata"]["annotations"]
    subscribed = {k.split("/subscribe.")[1].split(".")[0] for k in annotations if k.startswith("notifications.argoproj.io/subscribe.")}
    assert subscribed == set(TRIGGERS)
    bodies = {}
    for trigger, template in TRIGGERS.items():
        (condition,) = yaml.safe_load(data[f"trigger.{trigger}"])
        # oncePer keeps a failed send's key: the engine would never send it again (F2).
        assert "oncePer" not in condition and condition["send"] == [template]
        hook = yaml.safe_load(data[f"template.{template}"])["webhook"]["fnops-bridge"]
        assert hook["method"] == "POST" and hook["path"] == "/v1/argocd"
        bodies[template] = hook["body"]
    # One template per event, the same body but for the event each names.
    events = {t: __import__("re").search(r'"event" "([a-z-]+)"', b).group(1) for t, b in bodies.items()}
    assert sorted(events.values()) == sorted(ARGOCD_EVENTS)
    assert len({b.replace(f'"event" "{events[t]}"', "") for t, b in bodies.items()}) == 1
    assert not any(k.startswith(("template.fnops-bridge", "trigger.fnops-bridge")) for k in data)


def test_kubernetes_manifests_are_valid():
    docs = []
    for path in sorted(glob.glob(os.path.join(ROOT, "notifications", "kubernetes", "*.yaml"))):
        if os.path.basename(path) == "kustomization.yaml":
            continue
        with open(path) as f:
            docs += [d for d in yaml.safe_load_all(f) if d]
    kinds = sorted(d["kind"] for d in docs)
    assert kinds == ["ConfigMap", "Deployment", "PersistentVolumeClaim", "Role", "RoleBinding", "Secret", "Service",
                     "ServiceAccount", "ServiceMonitor"]
    import kubernetes_validate

    by_kind = {d["kind"]: d for d in docs}
    # The catch-up may list Argo CD's Applications, in Argo CD's namespace, and nothing else.
    assert by_kind["Role"]["metadata"]["namespace"] == "argocd"
    assert by_kind["Role"]["rules"] == [{"apiGroups": ["argoproj.io"], "resources": ["applications"], "verbs": ["list"]}]
    assert by_kind["RoleBinding"]["subjects"] == [{"kind": "ServiceAccount", "name": "fnops-bridge", "namespace": "fnops"}]
    assert by_kind["Deployment"]["spec"]["template"]["spec"]["serviceAccountName"] == "fnops-bridge"
    assert yaml.safe_load(by_kind["ConfigMap"]["data"]["bridge.yaml"])["argocd"]["catchUp"] == {"kubernetes": {}}
    for d in docs:
        if d["kind"] == "ServiceMonitor":
            assert schemas.validate(d) == []
        else:
            kubernetes_validate.validate(d, "1.33.0", strict=True)
    deploy = next(d for d in docs if d["kind"] == "Deployment")
    assert deploy["spec"]["replicas"] == 1 and deploy["spec"]["strategy"]["type"] == "Recreate"


def test_example_config_checks_with_its_env(monkeypatch):
    path = os.path.join(ROOT, "notifications", "bridge-config.yaml")
    r = CliRunner().invoke(cli, ["bridge", "check-config", path])
    assert r.exit_code == 2
    assert "bridge-config.yaml:6:24: auth.bearerTokenEnv: environment variable FNOPS_BRIDGE_TOKEN is not set" in r.output
    for k in ("FNOPS_BRIDGE_TOKEN", "FNOPS_BRIDGE_HMAC", "GITOPS_TOKEN", "SLACK_BOT_TOKEN", "GITHUB_TOKEN"):
        monkeypatch.setenv(k, "set")
    r = CliRunner().invoke(cli, ["bridge", "check-config", path])
    assert r.exit_code == 0, r.output


def test_bad_config_lines(tmp_path, monkeypatch):
    monkeypatch.setenv("T", "x")
    p = tmp_path / "c.yaml"
    p.write_text("listen: nowhere\nauth: {bearerTokenEnv: T}\nstore: redis://x\n"
                 "gitops: {repo: x, branch: main, auditBranch: main}\nrollback: {bakeTime: forever}\nslak: {}\n")
    r = CliRunner().invoke(cli, ["bridge", "check-config", str(p)])
    assert r.exit_code == 2
    out = r.output
    assert f"{p}:1:9: listen: 'nowhere' is not host:port" in out
    assert f"{p}:3:8: store: 'redis://x' is not supported" in out
    assert f"{p}:4:46: gitops.auditBranch: must differ from the branch Argo CD watches" in out
    assert f"{p}:5:22: rollback.bakeTime: 'forever' is not a duration" in out
    assert f"{p}:6:1: slak: unknown key; did you mean 'slack'?" in out


def _smp(base, patch):
    """The strategic merge patch kustomize applies, for what the overlay uses: maps merge,
    null deletes, lists of named items merge by name, other lists replace."""
    if not isinstance(base, dict) or not isinstance(patch, dict):
        return patch
    out = dict(base)
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        elif isinstance(v, list) and isinstance(out.get(k), list) and all(isinstance(i, dict) and "name" in i
                                                                           for i in v + out[k]):
            merged = {i["name"]: i for i in out[k]}
            for item in v:
                merged[item["name"]] = _smp(merged.get(item["name"], {}), item)
            out[k] = list(merged.values())
        else:
            out[k] = _smp(out.get(k), v)
    return out


def _kustomize(folder):
    with open(os.path.join(folder, "kustomization.yaml")) as f:
        k = yaml.safe_load(f)
    docs = []
    for r in k.get("resources", []):
        path = os.path.normpath(os.path.join(folder, r))
        if os.path.isdir(path):
            docs += _kustomize(path)
        else:
            with open(path) as f:
                docs += [d for d in yaml.safe_load_all(f) if d]
    for p in k.get("patches", []):
        with open(os.path.join(folder, p["path"])) as f:
            patch = yaml.safe_load(f)
        ident = (patch["kind"], patch["metadata"]["name"])
        target = next(i for i, d in enumerate(docs) if (d["kind"], d["metadata"]["name"]) == ident)
        if patch.get("$patch") == "delete":
            docs.pop(target)
        else:
            docs[target] = _smp(docs[target], patch)
    return docs


def test_postgresql_overlay_runs_replicas_with_a_budget_and_no_volume(tmp_path, monkeypatch):
    import kubernetes_validate

    docs = _kustomize(os.path.join(ROOT, "notifications", "kubernetes", "postgresql"))
    by_kind = {d["kind"]: d for d in docs}
    assert sorted(by_kind) == ["ConfigMap", "Deployment", "PodDisruptionBudget", "Role", "RoleBinding", "Service",
                              "ServiceAccount", "ServiceMonitor"]
    for d in docs:
        if d["kind"] == "ServiceMonitor":
            assert schemas.validate(d) == []
        else:
            kubernetes_validate.validate(d, "1.33.0", strict=True)
    spec = by_kind["Deployment"]["spec"]
    assert spec["replicas"] == 2 and spec["strategy"] == {"type": "RollingUpdate",
                                                           "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}}
    (container,) = spec["template"]["spec"]["containers"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz" and container["image"]  # merged, not replaced
    assert {v["name"]: v for v in spec["template"]["spec"]["volumes"]}["outbox"] == {"name": "outbox", "emptyDir": {}}
    pdb = by_kind["PodDisruptionBudget"]["spec"]
    assert pdb["minAvailable"] == 1 and pdb["selector"]["matchLabels"] == spec["selector"]["matchLabels"]
    config = tmp_path / "bridge.yaml"
    config.write_text(by_kind["ConfigMap"]["data"]["bridge.yaml"])
    for k in ("FNOPS_BRIDGE_TOKEN", "GITOPS_TOKEN", "SLACK_BOT_TOKEN", "GITHUB_TOKEN"):
        monkeypatch.setenv(k, "set")
    monkeypatch.setenv("FNOPS_BRIDGE_DSN", "postgresql://bridge@db:5432/fnops")
    r = CliRunner().invoke(cli, ["bridge", "check-config", str(config)])
    assert r.exit_code == 0, r.output
