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


@pytest.mark.parametrize("runtime", ["python3.11", "python3.12", "python3.13", "node22", "dockerfile", "image"])
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


# --- fnops new: permissions, templates, what the scaffold points at ------------------------

import json  # noqa: E402
import shutil  # noqa: E402
import stat  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import urllib.request  # noqa: E402

import yaml  # noqa: E402

from conftest import fnops, stop_process  # noqa: E402


@pytest.mark.parametrize("umask,mode", [("022", 0o755), ("027", 0o750), ("077", 0o700)])
def test_new_makes_folders_as_the_umask_says(tmp_path, umask, mode):
    exe = shutil.which("fnops")
    r = subprocess.run(["sh", "-c", f'umask {umask} && exec "$0" new hello --dir functions', exe], cwd=tmp_path,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    for folder in ("functions/hello", "functions/hello/releases"):
        assert stat.S_IMODE(os.stat(tmp_path / folder).st_mode) == mode, folder
    assert stat.S_IMODE(os.stat(tmp_path / "functions/hello/handler.py").st_mode) == mode & 0o666


@pytest.mark.parametrize("runtime,template", [("python3.12", "http"), ("python3.12", "cloudevents"),
                                              ("node22", "http"), ("node22", "cloudevents"),
                                              ("dockerfile", "http"), ("image", "http")])
def test_the_scaffold_validates_and_points_only_at_what_users_have(runner, tmp_path, runtime, template):
    r = runner.invoke(cli, ["new", "greeter", "--runtime", runtime, "--template", template, "--dir", str(tmp_path)])
    assert r.exit_code == 0, r.output
    folder = tmp_path / "greeter"
    assert runner.invoke(cli, ["validate", str(folder)]).exit_code == 0
    texts = {p.name: p.read_text() for p in folder.iterdir() if p.is_file()}
    assert not any("DESIGN" in t for t in texts.values())
    assert 'fnops README,\n# "function.yaml in one screen"' in texts["function.yaml"]
    spec = yaml.safe_load(texts["function.yaml"])
    if template == "cloudevents":
        assert spec["triggers"] == [{"event": {"broker": "default", "filter": {"type": "com.example.order.created"}}}]
        handler = texts.get("handler.py") or texts["handler.js"]
        assert spec["http"] == {"visibility": "cluster-local"}
        assert '"specversion": "1.0"' in handler or "specversion: '1.0'" in handler
    if runtime.startswith("python"):  # the contract, where the user edits
        for word in ("params", "headers", "cloudevent", "(body, status)", "(body, status, headers)", "None", "204"):
            assert word in texts["handler.py"], word
    if runtime.startswith("node"):
        for word in ("params", "headers", "cloudevent", "context.reply(body, status", "null", "204"):
            assert word in texts["handler.js"], word
        assert set(texts) == {"function.yaml", "handler.js", "package.json", "package-lock.json"}


def test_the_cloudevents_template_is_for_python_runtimes(runner, tmp_path):
    r = runner.invoke(cli, ["new", "greeter", "--runtime", "dockerfile", "--template", "cloudevents",
                            "--dir", str(tmp_path)])
    assert r.exit_code == 2 and r.output.strip() == (
        "fnops: --template cloudevents is for the python and node runtimes, not 'dockerfile' (python3.11, python3.12, "
        "python3.13, node20, node22, node24, node26)")
    assert os.listdir(tmp_path) == []


def test_the_dockerfile_scaffold_answers_post(tmp_path):
    from containers import free_port

    assert fnops("new", "web", "--runtime", "dockerfile", cwd=tmp_path).returncode == 0
    folder = tmp_path / "functions" / "web"
    dockerfile = (folder / "Dockerfile").read_text()
    assert 'COPY server.py .' in dockerfile and 'CMD ["python", "/app/server.py"]' in dockerfile
    port = free_port()
    # the file the image runs, run here with this Python (what the image's python does with it)
    proc = subprocess.Popen([sys.executable, "server.py"], cwd=folder, env={**os.environ, "PORT": str(port)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                req = urllib.request.Request(f"http://127.0.0.1:{port}/orders", data=b'{"id": 7}', method="POST")
                with urllib.request.urlopen(req, timeout=2) as r:
                    assert r.status == 200
                    assert json.loads(r.read()) == {"method": "POST", "path": "/orders", "received": 9}
                break
            except OSError:
                assert time.monotonic() < deadline and proc.poll() is None, "the scaffold's server did not answer"
                time.sleep(0.1)
    finally:
        stop_process(proc)


# --- render --preview: before the first ship, marked, and never Argo CD's ------------------

def test_render_previews_a_function_before_its_first_ship(tmp_path):
    assert fnops("new", "hello", "--dir", str(tmp_path)).returncode == 0
    folder = str(tmp_path / "hello")
    r = fnops("render", folder, "--env", "dev")  # what the CMP runs: a pin or nothing
    assert r.returncode == 2 and "no release pinned for environment 'dev'" in r.stderr
    r = fnops("render", folder, "--env", "dev", "--preview")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("# fnops render --preview: NOT A RELEASE. Image preview.invalid/hello:preview@sha256:")
    objs = [o for o in yaml.safe_load_all(r.stdout) if o]
    assert objs and all(o["metadata"]["annotations"]["fnops.dev/preview"] == "true" for o in objs)
    svc = next(o for o in objs if o["kind"] == "Service")
    image = svc["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image == "preview.invalid/hello:preview@sha256:" + "0" * 64
    assert "preview only: this is not what Argo CD renders" in r.stderr
    given = "ghcr.io/acme/functions/hello:sha-1234567@sha256:" + "a" * 64
    r = fnops("render", folder, "--env", "dev", "--preview", "--image", given)
    assert r.returncode == 0 and f"image: {given}" in r.stdout
    r = fnops("render", folder, "--env", "dev", "--preview", "--image", "ghcr.io/acme/functions/hello:latest")
    assert r.returncode == 2 and "--image: 'ghcr.io/acme/functions/hello:latest' is not pinned by digest" in r.stderr
    r = fnops("render", folder, "--env", "dev", "--image", given)
    assert r.returncode == 2 and "--image is for --preview" in r.stderr
    # inside Argo CD (the CMP sets ARGOCD_APP_NAME) a preview is refused, whatever the command line
    r = fnops("render", folder, "--env", "dev", "--preview", env={"ARGOCD_APP_NAME": "hello-dev"})
    assert r.returncode == 2 and r.stdout == "" and "--preview is for a person at a terminal" in r.stderr


def test_status_lists_functions_never_pinned(runner, monkeypatch, tmp_path):
    (tmp_path / "functions").mkdir()
    shutil.copytree(os.path.join(EXAMPLES, "hello"), tmp_path / "functions" / "hello")
    assert runner.invoke(cli, ["new", "fresh", "--dir", str(tmp_path / "functions")]).exit_code == 0
    monkeypatch.chdir(tmp_path)
    rows = json.loads(runner.invoke(cli, ["status", "--output", "json"]).output)
    fresh = [x for x in rows if x["function"] == "fresh"]
    assert fresh == [{"function": "fresh", "environment": "", "image": None, "sourceCommit": None, "releasedAt": None,
                      "rollbackOf": None, "problem": None, "stale": None, "note": "not pinned in any environment"}]
    text = runner.invoke(cli, ["status"]).output
    assert any(line.split()[:3] == ["fresh", "-", "(not"] and line.endswith("not pinned in any environment")
               for line in text.splitlines()), text


def test_every_fnops_command_in_the_readme_parses():
    """README's quick start and command lines are commands the CLI takes: every flag exists
    and every value is one it accepts (parsed by click, nothing run)."""
    import re
    import shlex

    import click

    from conftest import ROOT

    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        readme = f.read()
    lines = [line for block in re.findall(r"```bash\n(.*?)```", readme, re.S) for line in block.splitlines()]
    commands = [part.strip() for line in lines for part in line.split(" ; ") if part.strip().startswith("fnops ")]
    assert len(commands) > 25
    for command in commands:
        words = shlex.split(command.replace("[", "").replace("]", ""), comments=True)[1:]
        group, ctx = cli, None
        while isinstance(group, click.Group):
            ctx = click.Context(group, parent=ctx, info_name=words[0] if ctx else "fnops")
            group, words = group.get_command(ctx, words[0]), words[1:]
            assert group is not None, command
        try:
            group.make_context(group.name, list(words), parent=ctx)
        except click.UsageError as e:
            raise AssertionError(f"{command}: {e}") from None
