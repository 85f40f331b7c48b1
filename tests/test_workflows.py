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
    assert wf["concurrency"]["cancel-in-progress"] is False


def test_actionlint_passes_on_the_example_workflows():
    r = subprocess.run([tool("actionlint"), "-no-color", *WORKFLOWS], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_zizmor_finds_nothing_in_workflows_and_actions():
    r = subprocess.run([tool("zizmor"), "--offline", "--persona=auditor", "--format=plain",
                        os.path.join(ROOT, "examples", ".github", "workflows"), *ACTIONS],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "No findings" in r.stdout
