"""The health checks fnops ships reach argocd-cm through the repo-server kustomize Component
(what they decide is judged in Argo CD's Lua VM by tests/test_conformance.py)."""

import os
import shutil
import subprocess

import pytest
import yaml

from conftest import ROOT

COMPONENT = os.path.join(ROOT, "argocd-cmp", "repo-server")
KINDS = ("serving.knative.dev_Service", "sources.knative.dev_KafkaSource", "sources.knative.dev_PingSource",
         "eventing.knative.dev_Trigger", "http.keda.sh_HTTPScaledObject", "serving.knative.dev_DomainMapping",
         "http.keda.sh_InterceptorRoute")

# Just enough of an Argo CD install for the Component's patches to find their targets.
BASE = """
apiVersion: v1
kind: ConfigMap
metadata: {name: argocd-cm}
data: {url: https://argocd.example.com, resource.customizations.health.keda.sh_ScaledObject: "return {}"}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: argocd-cmd-params-cm}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: argocd-repo-server}
spec:
  selector: {matchLabels: {app: repo}}
  template:
    metadata: {labels: {app: repo}}
    spec:
      containers: [{name: argocd-repo-server, image: quay.io/argoproj/argocd:v3.1.0}]
"""


def test_the_component_merges_the_health_checks_into_argocd_cm(tmp_path):
    kubectl = shutil.which("kubectl")
    if not kubectl:
        pytest.skip("kubectl (its built-in kustomize) is not on PATH")
    (tmp_path / "install.yaml").write_text(BASE)
    (tmp_path / "kustomization.yaml").write_text(
        f"resources: [install.yaml]\ncomponents: [{os.path.relpath(COMPONENT, tmp_path)}]\n")
    r = subprocess.run([kubectl, "kustomize", "--load-restrictor", "LoadRestrictionsNone", str(tmp_path)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    cm = next(d for d in yaml.safe_load_all(r.stdout) if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "argocd-cm")
    data = cm["data"]
    assert data["url"] == "https://argocd.example.com"  # the install's own settings stay
    assert data["resource.customizations.health.keda.sh_ScaledObject"] == "return {}"
    for kind in KINDS:
        script = data[f"resource.customizations.health.{kind}"]
        assert "observedGeneration" in script and 'status = "Degraded"' in script, kind
