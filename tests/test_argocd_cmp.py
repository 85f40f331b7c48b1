"""argocd-cmp/: the plugin, the sidecar and the ApplicationSet are what Argo CD accepts."""

import copy
import glob
import os
import re
import shutil

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
    # Applications name it; discovery rules would cost a second full-repo stream per generate (F7).
    assert "discover" not in p["spec"]
    assert f"{p['metadata']['name']}-{p['spec']['version']}" == load("applicationset.yaml")["spec"]["template"][
        "spec"]["source"]["plugin"]["name"]


def _go_template(text: str, params: dict) -> str:
    """The goTemplate expressions the ApplicationSet uses, as Argo CD fills them: fields,
    `index .path.segments N` and an `if` around the templatePatch. Anything else fails."""
    def field(expr: str):
        expr = expr.strip()
        m = re.fullmatch(r"index \.path\.segments (\d+)", expr)
        if m:
            return params["path"]["segments"][int(m.group(1))]
        if re.fullmatch(r"\.\w+", expr):
            return params[expr[1:]]  # missingkey=error
        raise ValueError(f"template uses {expr!r}, which this test does not fill")

    def cond(m):
        return m.group(2) if field(m.group(1)) else ""

    text = re.sub(r"\{\{-? if ([^}]*?) -?\}\}(.*?)\{\{-? end -?\}\}", cond, text, flags=re.S)
    return re.sub(r"\{\{([^}]*)\}\}", lambda m: str(field(m.group(1))), text)


def _merge(base, patch):
    if not isinstance(base, dict) or not isinstance(patch, dict):
        return patch
    return {**base, **{k: _merge(base.get(k), v) for k, v in patch.items()}}


def generate(appset: dict, root: str) -> list[dict]:
    """The Applications the matrix makes: each environment × each pin file its glob finds
    (filepath.Match: `*` is one path segment), templatePatch merged."""
    (matrix,) = appset["spec"]["generators"]
    envs, files = matrix["matrix"]["generators"]
    apps = []
    for el in envs["list"]["elements"]:
        (pattern,) = [f["path"] for f in files["git"]["files"]]
        pattern = _go_template(pattern, el)
        for pin in sorted(glob.glob(os.path.join(root, pattern))):
            rel = os.path.relpath(pin, root)
            params = {**el, "path": {"path": os.path.dirname(rel), "segments": os.path.dirname(rel).split("/"),
                                     "filename": os.path.basename(rel)}}
            text = _go_template(yaml.safe_dump(appset["spec"]["template"], width=1000), params)
            app = yaml.safe_load(text)
            patch = yaml.safe_load(_go_template(appset["spec"].get("templatePatch", ""), params) or "{}")
            apps.append({"apiVersion": "argoproj.io/v1alpha1", "kind": "Application", **_merge(app, patch or {})})
    return apps


def test_applicationset_is_valid_and_sets_what_render_and_the_bridge_need(tmp_path):
    appset = load("applicationset.yaml")
    assert schemas.validate(appset) == []
    shutil.copytree(EXAMPLES, tmp_path / "functions")
    apps = generate(appset, str(tmp_path))
    pinned = sorted((fn, env) for fn in os.listdir(EXAMPLES)
                    for env in (f[:-5] for f in os.listdir(os.path.join(EXAMPLES, fn, "releases"))))
    assert sorted((a["metadata"]["labels"]["fnops.dev/function"], a["metadata"]["labels"]["fnops.dev/environment"])
                  for a in apps) == pinned
    elements = {el["env"]: el for el in appset["spec"]["generators"][0]["matrix"]["generators"][0]["list"]["elements"]}
    assert len({el["cluster"] for el in elements.values()}) == len(elements)  # a cluster per environment
    for app in apps:
        app["metadata"]["namespace"] = "argocd"
        assert schemas.validate(app) == []
        fn, env = app["metadata"]["labels"]["fnops.dev/function"], app["metadata"]["labels"]["fnops.dev/environment"]
        assert app["metadata"]["name"] == f"{fn}-{env}" and app["spec"]["source"]["path"] == f"functions/{fn}"
        assert app["spec"]["destination"] == {"server": elements[env]["cluster"], "namespace": elements[env]["namespace"]}
        policy = app["spec"]["syncPolicy"]
        if elements[env]["autoSync"]:
            assert policy["automated"] == {"prune": True, "selfHeal": True}
        else:
            assert "automated" not in policy  # prod waits for a person
        assert policy["retry"]["limit"] == 2
        plugin = app["spec"]["source"]["plugin"]
        assert plugin["name"] == "fnops-v1"
        penv = {e["name"]: e["value"] for e in plugin["env"]}
        # What the repo-server then passes to generate: ARGOCD_ENV_<name>, namespace from destination.
        r = fnops("render", ".", cwd=os.path.join(EXAMPLES, fn),
                  env={f"ARGOCD_ENV_{k}": v for k, v in penv.items()} |
                      {"ARGOCD_APP_NAMESPACE": app["spec"]["destination"]["namespace"]})
        assert r.returncode == 0, r.stderr
        objs = list(yaml.safe_load_all(r.stdout))
        assert {o["metadata"]["namespace"] for o in objs} == {elements[env]["namespace"]}


def test_only_pinned_function_environments_get_an_application(tmp_path):
    """F11: a folder without a pin for an environment (or that is no function) makes no app."""
    appset = load("applicationset.yaml")
    shutil.copytree(os.path.join(EXAMPLES, "hello"), tmp_path / "functions" / "hello")
    os.remove(tmp_path / "functions" / "hello" / "releases" / "prod.yaml")
    (tmp_path / "functions" / "notes").mkdir()
    (tmp_path / "functions" / "notes" / "README.md").write_text("not a function\n")
    assert [a["metadata"]["name"] for a in generate(appset, str(tmp_path))] == ["hello-dev"]


def test_the_cache_key_names_the_sidecar_image_and_its_render_settings():
    """F8: Argo CD's manifest cache key holds the plugin env, not the sidecar; the
    ApplicationSet's FNOPS_CMP_KEY carries both, so changing either renders every app again."""
    container = load("repo-server", "sidecar-patch.yaml")["spec"]["template"]["spec"]["containers"][0]
    plugin = load("applicationset.yaml")["spec"]["template"]["spec"]["source"]["plugin"]
    key = {e["name"]: e["value"] for e in plugin["env"]}["FNOPS_CMP_KEY"].split(" ")
    assert key[0] == container["image"]
    assert key[1:] == [f"{e['name']}={e['value']}" for e in container["env"] if e["name"].startswith("FNOPS_")]
    # render ignores it: it is only part of the key
    r = fnops("render", ".", cwd=os.path.join(EXAMPLES, "hello"), env={"ARGOCD_ENV_FNOPS_ENV": "dev"})
    r2 = fnops("render", ".", cwd=os.path.join(EXAMPLES, "hello"),
               env={"ARGOCD_ENV_FNOPS_ENV": "dev", "ARGOCD_ENV_FNOPS_CMP_KEY": " ".join(key)})
    assert r.returncode == r2.returncode == 0 and r.stdout == r2.stdout


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
    # F7: only the app's folder is streamed; F9: both callers' deadlines; resource health
    # stays in the Application, where the bridge looks for the Degraded object.
    assert params["reposerver.plugin.use.manifest.generate.paths"] == "true"
    assert params["controller.repo.server.timeout.seconds"] == params["server.repo.server.timeout.seconds"] == "120"
    assert params["controller.resource.health.persist"] == "true"
    assert load("applicationset.yaml")["spec"]["template"]["metadata"]["annotations"][
        "argocd.argoproj.io/manifest-generate-paths"] == "."


def _go_match(pattern: str, name: str) -> bool:
    """Go's filepath.Match for what the exclusions use: `*` is any run within one segment."""
    return re.fullmatch("".join("[^/]*" if c == "*" else "[^/]" if c == "?" else re.escape(c) for c in pattern),
                        name) is not None


def _excluded(patterns: list[str], path: str) -> bool:
    """util/io/files/tar.go tgzFile: a path is left out if it, or a directory above it, matches."""
    parts = path.split("/")
    return any(_go_match(p, "/".join(parts[:i])) for i in range(1, len(parts) + 1) for p in patterns)


def test_tar_exclusions_reach_the_folders_render_never_reads():
    patterns = load("repo-server", "cmd-params-patch.yaml")["data"]["reposerver.plugin.tar.exclusions"].split(";")
    # Streamed from the app's folder (manifest-generate-paths) or, without it, from the repo.
    for path in ("node_modules/left-pad/index.js", "__pycache__/handler.cpython-312.pyc",
                 "functions/hello/node_modules/x/y.js", "functions/hello/__pycache__/h.pyc", ".git/HEAD",
                 "lib/node_modules/x.js"):
        assert _excluded(patterns, path), path
    for path in ("function.yaml", "releases/dev.yaml", "handler.py", "functions/hello/function.yaml",
                 "functions/hello/releases/prod.yaml"):
        assert not _excluded(patterns, path), path


def test_sidecar_image_is_non_root_and_installs_only_fnops():
    with open(os.path.join(CMP, "Dockerfile")) as f:
        text = f.read()
    assert re.search(r"^USER 999$", text, re.M)
    assert "cmp-server/config/plugin.yaml" in text
    installs = re.findall(r"pip install[^\n]*", text)
    assert installs == ["pip install --no-cache-dir --prefix=/install ."]
