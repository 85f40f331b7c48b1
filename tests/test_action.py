"""Every action.yml validates against the GitHub Action schema and never expands
`${{ }}` inside `run:` (inputs reach the CLI only through env:)."""

import glob
import json
import os
import re

import jsonschema
import pytest
import yaml

import schemas
from conftest import ROOT

ACTIONS = [os.path.join(ROOT, "action.yml")] + sorted(glob.glob(os.path.join(ROOT, "actions", "*", "action.yml")))


@pytest.mark.parametrize("path", ACTIONS, ids=lambda p: os.path.relpath(p, ROOT))
def test_action_matches_schema_and_passes_inputs_through_env(path):
    with open(os.path.join(schemas.schema_dir(), "apis", "github-action.json")) as f:
        schema = json.load(f)
    with open(path) as f:
        action = yaml.safe_load(f)
    jsonschema.validate(action, schema)
    for step in action["runs"].get("steps", []):
        assert "${{" not in step.get("run", ""), step
        uses = step.get("uses")
        if uses and not uses.startswith("./"):
            assert re.fullmatch(r"[\w.-]+/[\w./-]+@[0-9a-f]{40}", uses), f"not pinned by SHA: {uses}"
