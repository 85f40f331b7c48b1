"""argocd-cmp/: the plugin, the sidecar and the ApplicationSet are what Argo CD accepts."""

import copy
import fnmatch
import os
import re

import yaml

import schemas
from conftest import EXAMPLES, ROOT, fnops

CMP = os.path.join(ROOT, "argocd-cmp")


def load(*parts):
    with open(os.path.join(CMP, *parts)) as f:
        return yaml.safe_load(f)


def test_plugin_yaml_shape_matches_the_cmp_v2_contract():
    p = load("plugin.yaml")
    assert p["apiVersion"] == "argoproj.io/v1alpha1" and p["kind"] == "ConfigManagementPlugin"
    assert set(p["spec"]) <= {"version", "init", "generate", "discover", "parameters", "preserveFileMode",
                              "provideGitCreds"}
    assert "lockRepo" not in p["spec"]
    assert p["spec"]["generate"]["command"] == ["fnops", "render", "."]
    # discovery is evaluated in the app's folder: every example matches it
    pattern = p["spec"]["discover"]["fileName"]
    for fn in os.listdir(EXAMPLES):
        files = ["./" + f for f in os.listdir(os.path.join(EXAMPLES, fn))]
        assert any(fnmatch.fnmatch(f, pattern) for f in files)


def _instantiate(appset, element, path):
    """Fill the goTemplate placeholders the way the matrix generator would."""
    values = {".path.path": path, ".path.basename": os.path.basename(path),
              ".path.basenameNormalized": os.path.basename(path).replace("_", "-").lower(),
              **{"." + k: v for k, v in element.items()}}
    text = yaml.safe_dump(appset["spec"]["template"])
    text = re.sub(r"\{\{(\.[\w.]+)\}\}", lambda m: values[m.group(1)], text)
    app = yaml.safe_load(text)
    return {"apiVersion": "argoproj.io/v1alpha1", "kind": "Application", **app}


def test_applicationset_is_valid_and_sets_what_render_and_the_bridge_need():
    appset = load("applicationset.yaml")
    assert schemas.validate(appset) == []
    elements = appset["spec"]["generators"][0]["matrix"]["generators"][1]["list"]["elements"]
    for el in elements:
        app = _instantiate(appset, el, "functions/hello")
        app["metadata"]["namespace"] = "argocd"
        assert schemas.validate(app) == []
        assert app["metadata"]["labels"] == {"fnops.dev/function": "hello", "fnops.dev/environment": el["env"]}
        plugin = app["spec"]["source"]["plugin"]
        assert plugin["name"] == "fnops-v1"
        env = {e["name"]: e["value"] for e in plugin["env"]}
        # What the repo-server then passes to generate: ARGOCD_ENV_<name>, namespace from destination.
        r = fnops("render", ".", cwd=os.path.join(EXAMPLES, "hello"),
                  env={f"ARGOCD_ENV_{k}": v for k, v in env.items()} |
                      {"ARGOCD_APP_NAMESPACE": app["spec"]["destination"]["namespace"]})
        assert r.returncode == 0, r.stderr
        objs = list(yaml.safe_load_all(r.stdout))
        assert {o["metadata"]["namespace"] for o in objs} == {el["namespace"]}


def test_sidecar_patch_is_a_valid_pod_spec_with_the_cmp_mounts():
    patch = load("repo-server", "sidecar-patch.yaml")
    pod = copy.deepcopy(patch["spec"]["template"]["spec"])
    c = pod["containers"][0]
    assert c["securityContext"]["runAsUser"] == 999
    assert c["command"] == ["/var/run/argocd/argocd-cmp-server"]
    mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
    assert mounts["/var/run/argocd"] == "var-files"
    assert mounts["/home/argocd/cmp-server/plugins"] == "plugins"
    assert "/tmp" in mounts
    # Argo CD's own manifest provides var-files and plugins; validate the merged pod.
    pod["volumes"] += [{"name": "var-files", "emptyDir": {}}, {"name": "plugins", "emptyDir": {}}]
    deploy = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "argocd-repo-server"},
              "spec": {"selector": {"matchLabels": {"a": "b"}},
                       "template": {"metadata": {"labels": {"a": "b"}}, "spec": pod}}}
    assert schemas.validate(deploy) == []
    params = load("repo-server", "cmd-params-patch.yaml")["data"]
    assert ".git/*" in params["reposerver.plugin.tar.exclusions"]


def test_sidecar_image_is_non_root_and_installs_only_fnops():
    with open(os.path.join(CMP, "Dockerfile")) as f:
        text = f.read()
    assert re.search(r"^USER 999$", text, re.M)
    assert "cmp-server/config/plugin.yaml" in text
    installs = re.findall(r"pip install[^\n]*", text)
    assert installs == ["pip install --no-cache-dir --prefix=/install ."]
