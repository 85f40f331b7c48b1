"""Prometheus' own promtool (Debian package `prometheus`, installed by .ci/run): rule unit
tests and offline PromQL parsing."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest
import yaml


def exe() -> str:
    found = shutil.which("promtool")
    if found:
        return found
    why = "needs promtool (Debian package prometheus; .ci/run installs it)"
    if os.environ.get("CI"):
        pytest.fail(why)  # CI must run these: a skip there would prove nothing
    pytest.skip(why)


def run(*args, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([exe(), *args], cwd=cwd, capture_output=True, text=True, timeout=300)


def unit_tests(tmp_path, rule_files: dict, tests: list) -> subprocess.CompletedProcess:
    """Write the rule files ({name: groups}) and a unit-test file over them; run promtool."""
    for name, groups in rule_files.items():
        (tmp_path / name).write_text(yaml.safe_dump({"groups": groups}, sort_keys=False))
    spec = {"rule_files": sorted(rule_files), "evaluation_interval": "1m", "tests": tests}
    (tmp_path / "tests.yaml").write_text(yaml.safe_dump(spec, sort_keys=False, width=1 << 20))
    return run("test", "rules", "tests.yaml", cwd=tmp_path)


def check_queries(tmp_path, exprs: list) -> subprocess.CompletedProcess:
    """Parse PromQL offline: each expression as a recording rule, through `promtool check rules`."""
    rules = [{"record": f"fnops:panel_query_{i}", "expr": e} for i, e in enumerate(exprs)]
    path = tmp_path / "queries.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "queries", "rules": rules}]}, sort_keys=False, width=1 << 20))
    return run("check", "rules", str(path))
