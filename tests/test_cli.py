"""validate and new, through click's CliRunner."""

import os

import pytest
from click.testing import CliRunner

from conftest import EXAMPLES
from fnops.cli import cli


@pytest.fixture
def runner():
    return CliRunner()


def test_validate_all_examples_in_one_process(runner):
    r = runner.invoke(cli, ["validate", EXAMPLES])
    assert r.exit_code == 0, r.output
    assert "6 function(s) checked: 6 ok, 0 with problems" in r.output


def test_validate_reports_each_broken_folder_and_exits_2(runner, fn_dir):
    good = fn_dir("hello")
    bad = fn_dir("checkout")
    text = (bad / "function.yaml").read_text().replace("    scale: {min: 2, max: 50}", "    scale: {min: 2, max: 1}")
    (bad / "function.yaml").write_text(text)
    rel = bad / "releases" / "dev.yaml"
    rel.write_text(rel.read_text().replace("@sha256:", ":latest#"))
    r = runner.invoke(cli, ["validate", str(good), str(bad)])
    assert r.exit_code == 2
    lines = [line for line in r.output.splitlines() if line.startswith(str(bad))]
    assert any(":13:" in line and "scale.max: max (1) is below min (2)" in line for line in lines), r.output
    assert any(line.startswith(f"{bad}/releases/dev.yaml:2:8: image:") for line in lines), r.output
    assert "2 function(s) checked: 1 ok, 1 with problems" in r.output


def test_validate_with_nothing_to_check_is_a_usage_error(runner, tmp_path):
    r = runner.invoke(cli, ["validate", str(tmp_path)])
    assert r.exit_code == 2 and "no function.yaml found" in r.output


@pytest.mark.parametrize("runtime", ["python3.11", "python3.12", "python3.13", "dockerfile", "image"])
def test_new_scaffold_validates_and_renders_once_released(runner, tmp_path, runtime):
    base = tmp_path / "functions"
    r = runner.invoke(cli, ["new", "greeter", "--runtime", runtime, "--dir", str(base)])
    assert r.exit_code == 0, r.output
    folder = base / "greeter"
    assert (folder / "function.yaml").exists()
    assert runner.invoke(cli, ["validate", str(folder)]).exit_code == 0
    r = runner.invoke(cli, ["render", str(folder), "--env", "dev"])
    assert r.exit_code == 2 and "no release pinned for environment 'dev'" in r.output
    repo = "registry.example.com/functions/greeter"
    (folder / "releases" / "dev.yaml").write_text(f"image: {repo}:sha-abcdef0@sha256:{'c' * 64}\n")
    r = runner.invoke(cli, ["render", str(folder), "--env", "dev"])
    assert r.exit_code == 0, r.output
    assert f"image: {repo}:sha-abcdef0@sha256:" in r.output


def test_new_refuses_to_overwrite_and_changes_nothing(runner, tmp_path):
    base = tmp_path / "functions"
    (base / "greeter").mkdir(parents=True)
    (base / "greeter" / "keep.txt").write_text("mine")
    r = runner.invoke(cli, ["new", "greeter", "--dir", str(base)])
    assert r.exit_code == 2 and "already exists" in r.output
    assert sorted(os.listdir(base)) == ["greeter"]
    assert os.listdir(base / "greeter") == ["keep.txt"]


def test_new_rejects_an_invalid_name(runner, tmp_path):
    r = runner.invoke(cli, ["new", "Bad_Name", "--dir", str(tmp_path)])
    assert r.exit_code == 2 and "not a valid function name" in r.output
    assert os.listdir(tmp_path) == []


def test_status_shows_what_is_pinned_where(runner, monkeypatch, tmp_path):
    import json
    import shutil

    root = tmp_path / "repo"
    (root / "functions").mkdir(parents=True)
    shutil.copytree(os.path.join(EXAMPLES, "hello"), root / "functions" / "hello")
    shutil.copytree(os.path.join(EXAMPLES, "checkout"), root / "functions" / "checkout")
    (root / "functions" / "checkout" / "releases" / "prod.yaml").unlink()  # prod has an overlay, no pin
    monkeypatch.chdir(root)
    r = runner.invoke(cli, ["status", "--output", "json"])
    assert r.exit_code == 0, r.output
    rows = {(x["function"], x["environment"]): x for x in json.loads(r.output)}
    assert set(rows) == {("checkout", "prod"), ("checkout", "dev"), ("hello", "dev"), ("hello", "prod")}
    assert rows[("hello", "dev")]["image"].startswith("ghcr.io/acme/functions/hello:sha-")
    assert rows[("checkout", "prod")]["image"] is None
    text = runner.invoke(cli, ["status"]).output
    assert text.splitlines()[0].split() == ["FUNCTION", "ENV", "IMAGE", "SOURCE", "RELEASED", "NOTE"]
    assert any(line.split()[:3] == ["checkout", "prod", "(not"] for line in text.splitlines())
