"""KEDA's own scaler constructors judge the trigger metadata of every ScaledObject fnops
renders (issue 20, item 4): every example with `deployer: keda` in each of its environments,
tests/test_conformance.py's render cases with `deployer: keda` (plus a Prometheus one), and
its commit sequence for each KEDA example (a cron window added before the Kafka trigger,
its lag threshold changed).

Upstream's pkg/scalers imports every cloud SDK; tests/conformance/scalers builds only the
files of it fnops renders for, placed by a `go test -overlay` this file writes from the
module cache (nothing upstream is committed). A separate binary, so the main harness's
build does not grow."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess

import pytest
import yaml

from conftest import EXAMPLES, example_envs, example_functions
from gotool import build_test_binary, go_env, require_go
from test_conformance import (HARNESS, RENDER_CASES, RENDER_PLATFORM, _render, _revision, _write, sequence_steps)

SCALERS = os.path.join(HARNESS, "scalers")
KEDA_MODULE = "github.com/kedacore/keda/v2"
# The scaler files of KEDA's pkg/scalers for the trigger types fnops renders
# (plugin/fnops/render/keda.py) plus scaler.go, which they share.
UPSTREAM_FILES = {
    "scaler.go": None,
    "cron_scaler.go": "cron",
    "kafka_scaler.go": "kafka",
    "prometheus_scaler.go": "prometheus",
    "cpu_memory_scaler.go": "cpu/memory",
    "external_scaler.go": "external-push (the HTTP add-on)",
}


def _keda_examples() -> list[str]:
    out = []
    for fn in example_functions():
        with open(os.path.join(EXAMPLES, fn, "function.yaml")) as f:
            if (yaml.safe_load(f) or {}).get("deployer") == "keda":
                out.append(fn)
    return out


KEDA_EXAMPLES = _keda_examples()
# tests/test_conformance.py's render cases with deployer keda, and the triggers they do not reach.
KEDA_RENDER_CASES = {n: c for n, c in RENDER_CASES.items() if yaml.safe_load(c[0]).get("deployer") == "keda"}
KEDA_RENDER_CASES["keda-prometheus"] = (
    "runtime: python3.12\ndeployer: keda\nhttp: {visibility: none}\nscale:\n  min: 0\n  max: 3\n  metric: prometheus\n"
    "  target: 5\n  prometheus:\n    query: sum(rate(jobs_total[1m]))\n    serverAddress: http://prometheus.monitoring:9090\n",
    "dev", RENDER_CASES["cpu-hpa"][2])


def case_ids() -> list[str]:
    ids = [f"example/{fn}/{env}" for fn in KEDA_EXAMPLES for env in example_envs(fn)]
    ids += [f"render/{n}" for n in KEDA_RENDER_CASES]
    ids += [f"sequence/{fn}" for fn in KEDA_EXAMPLES]
    return ids


def write_overlay(path: str) -> dict:
    """`go build -overlay` may not replace files in the module cache, but may add files
    anywhere else: upstream's files appear, unchanged, in the virtual package ./upstream."""
    r = subprocess.run(["go", "list", "-m", "-json", KEDA_MODULE], cwd=HARNESS, env=go_env(),
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    src = os.path.join(json.loads(r.stdout)["Dir"], "pkg", "scalers")
    dst = os.path.join(SCALERS, "upstream")
    replace = {os.path.join(dst, name): os.path.join(src, name) for name in UPSTREAM_FILES}
    replace[os.path.join(dst, "fnops_additions.go")] = os.path.join(SCALERS, "additions.go.in")
    missing = [p for p in replace.values() if not os.path.isfile(p)]
    assert not missing, f"KEDA's pkg/scalers no longer has {missing}: pick the new files in UPSTREAM_FILES"
    with open(path, "w") as f:
        json.dump({"Replace": replace}, f, indent=1)
    return replace


@pytest.fixture(scope="session")
def scalers_binary(tmp_path_factory):
    what = "KEDA's scalers (tests/conformance/scalers)"
    require_go(HARNESS, what)  # the overlay asks go where the module is
    d = tmp_path_factory.mktemp("keda-scalers-bin")
    overlay = str(d / "overlay.json")
    write_overlay(overlay)
    # -vet=off: vet cannot enter the overlay's virtual directory, and the code is upstream's.
    return build_test_binary(HARNESS, d / "scalers.test", what, pkg="./scalers",
                             flags=("-vet=off", f"-overlay={overlay}"))


def _pairs(manifests: str) -> list[tuple[dict, dict | None]]:
    """(ScaledObject, the Deployment it targets) of one render."""
    docs = [d for d in yaml.safe_load_all(manifests) if d]
    deployments = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Deployment"}
    return [(d, deployments.get(d["spec"]["scaleTargetRef"]["name"])) for d in docs if d["kind"] == "ScaledObject"]


def write_cases(root: str) -> list[dict]:
    cases = []

    def add(case_id: str, manifests: str):
        pairs = _pairs(manifests)
        assert pairs, f"{case_id}: deployer keda rendered no ScaledObject"
        for so, dep in pairs:
            assert dep is not None, f"{case_id}: ScaledObject {so['metadata']['name']} targets no rendered Deployment"
            cases.append({"id": case_id, "scaledObject": so, "deployment": dep})

    for fn in KEDA_EXAMPLES:
        for env in example_envs(fn):
            add(f"example/{fn}/{env}", _render(os.path.join(EXAMPLES, fn), env, f"functions-{env}"))
    for name, (spec, env, release) in KEDA_RENDER_CASES.items():
        folder = os.path.join(root, "folders", name, "fn")
        _write(folder, spec, env, release)
        add(f"render/{name}", _render(folder, env, f"functions-{env}", RENDER_PLATFORM.get(name)))
    for fn in KEDA_EXAMPLES:
        env = "dev" if "dev" in example_envs(fn) else example_envs(fn)[0]
        folder = os.path.join(root, "folders", "sequence", fn)
        shutil.copytree(os.path.join(EXAMPLES, fn), folder)
        with open(os.path.join(folder, "function.yaml")) as f:
            spec = yaml.safe_load(f)
        with open(os.path.join(folder, "releases", f"{env}.yaml")) as f:
            release = yaml.safe_load(f)
        rendered = [""]
        for i, (step, sp, rel, _platform) in enumerate(sequence_steps(spec, release, lambda: _revision(rendered[0]))):
            _write(folder, sp, env, rel)
            rendered[0] = _render(folder, env, f"functions-{env}")
            add(f"sequence/{fn}/{i:02d}-{step}", rendered[0])
    return cases


@pytest.fixture(scope="session")
def judged(scalers_binary, tmp_path_factory):
    root = tmp_path_factory.mktemp("keda-scalers-cases")
    cases = write_cases(str(root))
    path = os.path.join(root, "cases.json")
    with open(path, "w") as f:
        json.dump(cases, f)
    r = subprocess.run([str(scalers_binary), "-test.run", "^TestScalers$", "-test.v", "-cases", path],
                       cwd=SCALERS, env=go_env(), capture_output=True, text=True, timeout=600)
    if r.returncode not in (0, 1):
        pytest.fail(f"the scalers binary did not run (exit {r.returncode}):\n{r.stdout[-6000:]}{r.stderr[-2000:]}",
                    pytrace=False)
    return cases, r.stdout


def _subtests(output: str, prefix: str) -> dict[str, str]:
    """Subtest name -> PASS/FAIL for the subtests of TestScalers under prefix."""
    return {m.group(2): m.group(1) for m in re.finditer(r"--- (PASS|FAIL): TestScalers/(\S+)", output)
            if m.group(2).startswith(prefix + "/")}


def _failure_text(output: str, prefix: str) -> str:
    lines = output.splitlines()
    keep = [i for i, ln in enumerate(lines) if f"TestScalers/{prefix}/" in ln and "--- FAIL" in ln]
    return "\n".join("\n".join(lines[max(0, i - 1):i + 4]) for i in keep) or output[-3000:]


@pytest.mark.parametrize("case_id", case_ids())
def test_kedas_scalers_accept_the_rendered_triggers(case_id, judged):
    cases, output = judged
    triggers = sum(len(c["scaledObject"]["spec"]["triggers"]) for c in cases
                   if c["id"] == case_id or c["id"].startswith(case_id + "/"))
    results = _subtests(output, case_id)
    assert triggers and len(results) == triggers, f"{case_id}: {triggers} triggers rendered, {len(results)} judged"
    failed = [name for name, verdict in results.items() if verdict == "FAIL"]
    assert not failed, f"KEDA's scalers refuse {failed}:\n{_failure_text(output, case_id)}"


def test_every_type_fnops_renders_is_judged(judged):
    """The renders reach every trigger type the upstream files here are for: none is
    compiled for nothing, and a type fnops starts rendering fails judge() until added."""
    cases, _ = judged
    types = {t["type"] for c in cases for t in c["scaledObject"]["spec"]["triggers"]}
    assert types == {"cron", "kafka", "prometheus", "cpu", "memory", "external-push"}, types


def test_the_scalers_table_shows_each_judge_can_fail(scalers_binary):
    """The Go table: a refused twin beside each accepted trigger, in KEDA's own words."""
    r = subprocess.run([str(scalers_binary), "-test.run", "^TestScalersJudge$", "-test.v"], cwd=SCALERS,
                       env=go_env(), capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-6000:] + r.stderr[-2000:]
    for row in ("cron_refuses_start_equal_to_end", "cron_refuses_an_unknown_timezone_at_its_first_poll",
                "kafka_refuses_lagThreshold_0",
                "prometheus_refuses_a_missing_serverAddress", "external-push_refuses_a_missing_scalerAddress"):
        assert f"--- PASS: TestScalersJudge/{row}" in r.stdout, r.stdout[-4000:]
    assert "start and end can not have exactly same time input" in r.stdout


def test_a_refused_render_fails_with_kedas_words(scalers_binary, tmp_path):
    """What a user would see if fnops rendered a trigger KEDA refuses: the case fails, naming
    the ScaledObject, the trigger and KEDA's message."""
    spec, env, release = RENDER_CASES["keda-http"]
    _write(str(tmp_path / "fn"), spec, env, release)
    manifests = _render(str(tmp_path / "fn"), env, "functions-dev")
    (so, dep), = _pairs(manifests)
    kafka = next(t for t in so["spec"]["triggers"] if t["type"] == "kafka")
    kafka["metadata"]["lagThreshold"] = "0"  # past fnops' own check: KEDA must refuse it on its own
    path = tmp_path / "cases.json"
    path.write_text(json.dumps([{"id": "render/refused", "scaledObject": so, "deployment": dep}]))
    r = subprocess.run([str(scalers_binary), "-test.run", "^TestScalers$", "-test.v", "-cases", str(path)],
                       cwd=SCALERS, env=go_env(), capture_output=True, text=True, timeout=300)
    assert r.returncode == 1, r.stdout[-3000:]
    assert "KEDA's kafka scaler refuses trigger" in r.stdout and '"lagThreshold" must be positive number' in r.stdout



def test_go_mod_keeps_what_the_upstream_files_import(tmp_path):
    """scalers/deps.go names every non-standard import of the overlaid files, so that
    `go mod tidy -e` keeps their modules (it cannot see the overlay's ./upstream)."""
    if not shutil.which("go"):
        pytest.skip("Go is not on PATH")
    overlay = str(tmp_path / "overlay.json")
    write_overlay(overlay)

    def imports(*args: str) -> set[str]:
        r = subprocess.run(["go", "list", "-f", "{{join .Imports \"\\n\"}}", *args], cwd=HARNESS, env=go_env(),
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        return {p for p in r.stdout.split() if "." in p.split("/")[0]}

    upstream = imports(f"-overlay={overlay}", "./scalers/upstream")
    named = imports("-tags=fnops_scalers_deps", "./scalers")
    assert upstream and upstream == named, f"scalers/deps.go misses {upstream - named}, needlessly names {named - upstream}"
