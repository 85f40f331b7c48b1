"""The example workflows and every action: schema-valid, actionlint-clean, zizmor-clean."""

import glob
import json
import os
import shutil
import subprocess

import jsonschema
import pytest

from fnops import yamldoc

import schemas
from conftest import ROOT

WORKFLOWS = sorted(glob.glob(os.path.join(ROOT, "examples", ".github", "workflows", "*.yml")))
ACTIONS = [os.path.join(ROOT, "action.yml")] + sorted(glob.glob(os.path.join(ROOT, "actions", "*", "action.yml")))


# Actions the examples and fnops' actions use, by the commit of a release that runs on
# Node 24 (each checked against the tag in the action's repository: see README).
NODE24 = {
    "3d3c42e5aac5ba805825da76410c181273ba90b1",  # actions/checkout v7.0.1
    "5fda3b95a4ea91299a34e894583c3862153e4b97",  # actions/setup-python v7.0.0
    "ed597411d8f924073f98dfc5c65a23a2325f34cd",  # actions/github-script v8.0.0
    "bbbca2ddaa5d8feaa63e36b76fdaad77386f024f",  # actions/upload-artifact v7.0.0
    "3e5f45b2cfb9172054b4087a40e8e0b5a5461e7c",  # actions/download-artifact v8.0.1
}


def _load(path):
    with open(path) as f:
        return yamldoc.loads(f.read(), path).value


def test_a_prod_gate_or_a_rollback_never_holds_another_environments_queue():
    """M1: nothing waits for a person while holding a group other runs need, and rollbacks
    have groups of their own (they neither wait behind a deploy nor replace one)."""
    ship = _load(os.path.join(ROOT, "examples", ".github", "workflows", "ship.yml"))
    assert "concurrency" not in ship  # no run-wide group
    groups = {name: job["concurrency"]["group"] for name, job in ship["jobs"].items()}
    assert groups == {"dev": "fnops-env-dev", "staging": "fnops-env-staging", "prod": "fnops-env-prod"}
    assert not any("environment" in job for job in ship["jobs"].values())  # prod is a pull request
    prod = ship["jobs"]["prod"]["steps"][-1]["with"]
    assert prod["mode"] == "pr" and prod["to"] == "prod"
    deploy_groups = set()
    for path in WORKFLOWS:
        wf = _load(path)
        for g in [wf.get("concurrency")] + [j.get("concurrency") for j in wf["jobs"].values()]:
            if g and "rollback" not in os.path.basename(path):
                deploy_groups.add(g["group"])
    rollback = _load(os.path.join(ROOT, "examples", ".github", "workflows", "rollback.yml"))
    group = rollback["jobs"]["rollback"]["concurrency"]["group"]
    assert group.startswith("fnops-rollback-") and "inputs.function" in group
    assert not any(g.startswith("fnops-rollback-") for g in deploy_groups)


def test_one_failed_matrix_leg_does_not_stop_the_pin_job():
    """M6: the pin job runs after failed legs (not after a cancel) and pins what was built."""
    wf = _load(os.path.join(ROOT, "examples", ".github", "workflows", "ship-matrix.yml"))
    pin = wf["jobs"]["pin"]
    assert sorted(pin["needs"]) == ["build", "plan"]
    assert pin["if"].replace(" ", "") == "${{!cancelled()&&needs.plan.outputs.count!='0'}}"
    assert wf["jobs"]["build"]["strategy"]["fail-fast"] is False


def test_promote_needs_no_history_and_defaults_to_a_pull_request():
    wf = _load(os.path.join(ROOT, "examples", ".github", "workflows", "promote.yml"))
    assert wf["on"]["workflow_dispatch"]["inputs"]["mode"]["default"] == "pr"
    job = wf["jobs"]["promote"]
    assert "environment" not in job and "fetch-depth" not in job["steps"][0].get("with", {})


def test_every_action_pins_node24_actions_and_leaves_the_callers_python_alone():
    """C2 + M8: setup-python only with update-environment false; no Node 20 action."""
    for path in ACTIONS:
        action = _load(path)
        for step in action["runs"]["steps"]:
            uses = step.get("uses", "")
            if uses.startswith("actions/"):
                assert uses.split("@")[1] in NODE24, (path, uses)
            if uses.startswith("actions/setup-python"):
                assert step["with"]["update-environment"] is False or step["with"]["update-environment"] == "false"
            assert "pip install" not in step.get("run", "")  # only install-fnops.sh installs, into its venv


def tool(name):
    path = shutil.which(name)
    if not path:
        pytest.fail(f"{name} is not installed (pip install -e '.[test]')")
    return path


@pytest.mark.parametrize("path", WORKFLOWS, ids=os.path.basename)
def test_workflow_matches_schema_least_permissions_and_sha_pins(path):
    with open(os.path.join(schemas.schema_dir(), "apis", "github-workflow.json")) as f:
        schema = json.load(f)
    with open(path) as f:
        # fnops' loader keeps `on:` a string key (YAML 1.1 loaders turn it into True).
        wf = yamldoc.loads(f.read(), path).value
    jsonschema.validate(wf, schema)
    assert wf["permissions"] == {}  # nothing by default; each job asks for what it needs
    for job in wf["jobs"].values():
        assert "write-all" not in str(job.get("permissions"))
        assert job["name"] and job["timeout-minutes"] <= 30
        for step in job["steps"]:
            if "uses" in step:
                ref = step["uses"].split("@")[1]
                assert len(ref) == 40 and all(c in "0123456789abcdef" for c in ref), step["uses"]
            assert "${{" not in step.get("run", "")
    # Queued, never cancelled while running: a group at the workflow level or on the job.
    groups = [wf["concurrency"]] if "concurrency" in wf else []
    groups += [job["concurrency"] for job in wf["jobs"].values() if "concurrency" in job]
    assert groups and all(g["cancel-in-progress"] is False for g in groups)
    for job in wf["jobs"].values():
        # M2: nobody vouches for an approval fnops cannot check
        assert "approved" not in str([step.get("with", {}) for step in job["steps"]])
        uses_fnops = [step for step in job["steps"] if step.get("uses", "").startswith("acme/fnops")]
        writes = (job.get("permissions") or {}).get("contents") == "write"
        if uses_fnops and writes:
            # F1: any job that pins may fall into PR mode (`approval: required`)
            assert job["permissions"].get("pull-requests") == "write", job["name"]
        for step in job["steps"]:
            if step.get("uses", "").startswith("actions/"):
                assert step["uses"].split("@")[1] in NODE24, step["uses"]  # C2: no Node 20 action


def test_actionlint_passes_on_the_example_workflows():
    r = subprocess.run([tool("actionlint"), "-no-color", *WORKFLOWS], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_zizmor_finds_nothing_in_workflows_and_actions():
    r = subprocess.run([tool("zizmor"), "--offline", "--persona=auditor", "--format=plain",
                        os.path.join(ROOT, "examples", ".github", "workflows"), *ACTIONS],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "No findings" in r.stdout
