"""The Argo CD CMP contract (shared/reference/argocd-contract.md): generate runs in the app
folder with ARGOCD_* variables; stdout is only manifests; errors go to stderr with exit ≠ 0
and never an empty success."""

import os
import shutil

import yaml

from conftest import EXAMPLES, fnops

HELLO = os.path.join(EXAMPLES, "hello")

ARGO_ENV = {
    "ARGOCD_APP_NAME": "argocd_hello-prod",
    "ARGOCD_APP_NAMESPACE": "team-hello",
    "ARGOCD_APP_PROJECT_NAME": "functions",
    "ARGOCD_APP_REVISION": "0123456789abcdef0123456789abcdef01234567",
    "ARGOCD_APP_REVISION_SHORT": "0123456",
    "ARGOCD_APP_SOURCE_PATH": "functions/hello",
    "ARGOCD_APP_SOURCE_REPO_URL": "https://github.com/acme/functions.git",
    "ARGOCD_APP_SOURCE_TARGET_REVISION": "main",
    "KUBE_VERSION": "1.33.0",
    "ARGOCD_ENV_FNOPS_ENV": "prod",
}


def test_generate_in_app_folder_with_argocd_environment():
    r = fnops("render", ".", cwd=HELLO, env=ARGO_ENV)
    assert r.returncode == 0 and r.stderr == ""
    objs = list(yaml.safe_load_all(r.stdout))
    assert objs and all(o["metadata"]["namespace"] == "team-hello" for o in objs)
    assert all(o["metadata"]["labels"]["fnops.dev/environment"] == "prod" for o in objs)
    assert r.stdout.startswith("---\napiVersion: ")


def test_env_flag_wins_over_argocd_env():
    r = fnops("render", ".", "--env", "dev", cwd=HELLO, env=ARGO_ENV)
    assert r.returncode == 0
    assert "fnops.dev/environment: dev" in r.stdout


def test_output_depends_only_on_folder_env_and_params():
    """Revision, app name and other ARGOCD_* values are not inputs: same bytes either way."""
    a = fnops("render", ".", cwd=HELLO, env=ARGO_ENV).stdout
    other = dict(ARGO_ENV, ARGOCD_APP_REVISION="f" * 40, ARGOCD_APP_NAME="x", KUBE_VERSION="1.30.0",
                 TZ="Asia/Seoul", LANG="de_DE.UTF-8")
    b = fnops("render", ".", cwd=HELLO, env=other).stdout
    assert a == b and a


def test_metrics_generation_is_the_sidecars_setting_not_the_applications():
    """Which metrics the cluster's Knative exports is the platform's to say (FNOPS_KNATIVE_METRICS
    on the sidecar); an Application that still sets it is told where it moved, not ignored."""
    checkout = os.path.join(EXAMPLES, "checkout")
    base = fnops("render", checkout, "--env", "dev").stdout
    legacy = fnops("render", checkout, "--env", "dev", env={"FNOPS_KNATIVE_METRICS": "opencensus"}).stdout
    assert "kn_serving_invocation_duration_seconds_bucket" in base and "revision_request" not in base
    assert 'revision_request_latencies_bucket{le=~"300|300.0"' in legacy
    moved = fnops("render", checkout, "--env", "dev", env={"ARGOCD_ENV_FNOPS_KNATIVE_METRICS": "opencensus"})
    assert moved.returncode == 2 and moved.stdout == ""
    assert moved.stderr == ("fnops: FNOPS_KNATIVE_METRICS is a platform setting: set it on the CMP sidecar "
                            "(argocd-cmp/repo-server), not in the Application's plugin env\n")
    bad = fnops("render", checkout, "--env", "dev", env={"FNOPS_KNATIVE_METRICS": "statsd"})
    assert bad.returncode == 2 and bad.stdout == "" and bad.stderr.count("\n") == 1
    assert "FNOPS_KNATIVE_METRICS='statsd' is not one of otel, otel-1.19, opencensus" in bad.stderr


def test_no_environment_is_a_usage_error_not_an_empty_success():
    r = fnops("render", ".", cwd=HELLO)
    assert r.returncode == 2
    assert r.stdout == ""
    assert r.stderr.count("\n") == 1 and "FNOPS_ENV" in r.stderr


def test_environment_without_release_fails_and_names_the_file(tmp_path):
    dst = tmp_path / "hello"
    shutil.copytree(HELLO, dst)
    r = fnops("render", str(dst), "--env", "staging")
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.startswith(f"{dst}/releases/staging.yaml:1:1: no release pinned for environment 'staging'")
    assert "Traceback" not in r.stderr


def test_help_goes_through_click():
    r = fnops("render", "--help")
    assert r.returncode == 0 and "ARGOCD_APP_NAMESPACE" in r.stdout
    r = fnops("render")
    assert r.returncode == 2 and "Missing argument" in r.stderr


def test_render_does_not_import_click_or_network_libraries():
    """The fast path stays fast: no click, no HTTP clients on the CMP's hot path."""
    import subprocess
    import sys

    code = (
        "import sys, io, contextlib\n"
        "from fnops.entry import main\n"
        "buf = io.StringIO()\n"
        "with contextlib.redirect_stdout(buf):\n"
        f"    rc = main(['render', {HELLO!r}, '--env', 'dev'])\n"
        "assert rc == 0, rc\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('click', 'http', 'urllib3', 'requests', 'socket', 'ssl', 'slack_sdk', 'github', 'jsonschema'))\n"
        "print(heavy)\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"
