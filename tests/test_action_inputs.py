"""The action's inputs and outputs as a user writes them: one builder vocabulary with the
CLI (the old names still working, with a warning), docker/build-push-action's build inputs
(secrets, ssh, target, tags, annotations, no-cache, provenance) and outputs (imageid,
metadata) through both builders, and README's tables checked against action.yml.

Run as the runner runs a composite action (tests/gha_runner.py): inputs as Actions passes
them, `run:` steps in bash, workflow commands parsed as the runner parses them."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess

import pytest
import yaml

import containers
import gha_runner
from conftest import ROOT
from gitrepo import git, head

CONFIG_DIGEST = "sha256:" + "c" * 64
INDEX_DIGEST = "sha256:" + "7" * 64

# A stand-in `docker`: logs each command line, writes buildx's metadata file, and for every
# --secret id=ID,src=FILE records what the builder would have read from FILE.
DOCKER = """#!/bin/bash
printf '%s\\n' "$*" >> {log}
if [ "$1 $2" = "buildx inspect" ]; then printf 'Name: x\\nDriver: %s\\n' "${{FAKE_DRIVER:-docker-container}}"; exit 0; fi
if [ "$1 $2" = "buildx build" ]; then
  while [ $# -gt 0 ]; do
    case "$1" in
      --metadata-file) printf '{{"containerimage.digest": "{index}", "containerimage.config.digest": "{config}", "image.name": "x"}}' > "$2" ;;
      --secret) src="${{2##*src=}}"; printf '%s=%s|%s\\n' "${{2%%,*}}" "$(cat "$src")" "$src" >> {secrets} ;;
    esac
    shift
  done
fi
exit 0
"""


@pytest.fixture
def job(tmp_path):
    """A functions repo (one dockerfile function, `cat`), its origin, a stand-in docker."""
    bare, work = tmp_path / "origin.git", tmp_path / "work"
    git(tmp_path, "init", "--quiet", "--bare", "--initial-branch=main", str(bare))
    git(tmp_path, "init", "--quiet", "--initial-branch=main", str(work))
    cat = work / "functions" / "cat"
    (cat / "releases").mkdir(parents=True)
    (cat / "function.yaml").write_text("runtime: dockerfile\nhttp: {visibility: cluster-local}\n")
    (cat / "Dockerfile").write_text("FROM scratch AS build\nCOPY hello.txt /hello.txt\nFROM build AS final\n")
    (cat / "hello.txt").write_text("hi\n")
    git(work, "add", "-A")
    git(work, "commit", "--quiet", "-m", "functions")
    git(work, "remote", "add", "origin", str(bare))
    git(work, "push", "--quiet", "origin", "main")
    bin_ = tmp_path / "bin"
    bin_.mkdir()
    log, secrets = tmp_path / "docker.log", tmp_path / "secrets.log"
    (bin_ / "docker").write_text(DOCKER.format(log=log, secrets=secrets, index=INDEX_DIGEST, config=CONFIG_DIGEST))
    (bin_ / "docker").chmod(0o755)
    calls: list = []
    stubs, _ = gha_runner.fnops_stubs(str(tmp_path / "stubs"), calls)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ARGOCD_", "FNOPS_", "GITHUB_", "ACTIONS_",
                                                                    "BUILDX_"))}
    env.update(PATH=f"{bin_}{os.pathsep}{os.environ['PATH']}", GITHUB_SHA=head(str(work)),
               GITHUB_REF="refs/heads/main", GITHUB_REPOSITORY="acme/functions",
               GITHUB_SERVER_URL="https://github.com", **containers.BUILDAH_ENV)

    class Job:
        pass

    j = Job()
    j.work, j.bare, j.tmp, j.calls, j.log, j.secrets = str(work), str(bare), tmp_path, calls, log, secrets

    def run(action="action.yml", extra_env=None, github=None, **inputs):
        return gha_runner.run_action(os.path.join(ROOT, action), inputs, workspace=str(work),
                                     temp=str(tmp_path / f"runner-{len(calls)}-{len(inputs)}"),
                                     env={**env, **(extra_env or {})},
                                     github={"token": "ghs_job_token_0123456789abcdef", **(github or {})},
                                     uses=stubs)

    j.run = run
    j.builds = lambda: [line for line in (log.read_text().splitlines() if log.exists() else [])
                        if line.startswith("buildx build")]
    return j


def _warnings(r, title="fnops deprecated input"):
    return [a.message for a in r.annotations if a.kind == "warning" and a.properties.get("title") == title]


# --- one vocabulary with the CLI --------------------------------------------------------------

@pytest.mark.parametrize("inputs,builder,instance,warned", [
    ({}, "buildah", "", []),
    ({"builder": "docker"}, "docker", "", []),
    ({"builder": "docker", "buildx-builder": "ci"}, "docker", "ci", []),
    ({"tool": "docker"}, "docker", "", ["tool: docker is the old name of builder: write builder: docker."]),
    ({"tool": "buildah"}, "buildah", "", ["tool: buildah is the old name of builder: write builder: buildah."]),
    ({"builder": "mine"}, "docker", "mine", ["builder: mine names a buildx instance (its old meaning). Write "
                                             "builder: docker and buildx-builder: mine (builder is now what builds: "
                                             "buildah or docker, as fnops ship --builder)."]),
    ({"tool": "docker", "builder": "mine"}, "docker", "mine", 2),
])
def test_the_builder_inputs_speak_the_clis_vocabulary(job, inputs, builder, instance, warned):
    r = job.run(env="dev", registry="ghcr.io/acme/fns", plan="true", **inputs)
    assert r.ok, [(s.id, s.stderr) for s in r.steps]
    names = r.step("names")
    assert (names.outputs["builder"], names.outputs["instance"]) == (builder, instance)
    ship = r.step("ship")
    assert (ship.env["FNOPS_BUILDER"], ship.env["FNOPS_BUILDX_BUILDER"]) == (builder, instance)
    assert (len(_warnings(r)) == warned) if isinstance(warned, int) else _warnings(r) == warned


@pytest.mark.parametrize("inputs,message", [
    ({"builder": "buildah", "buildx-builder": "ci"}, "buildx-builder: ci is a buildx instance, for builder: docker"),
    ({"tool": "podman"}, "tool: 'podman' is neither buildah nor docker"),
    ({"builder": "bad name\n::error::forged"}, "builder: 'bad name%0A::error::forged' is neither buildah nor docker"),
])
def test_builder_inputs_that_make_no_sense_stop_before_anything_runs(job, inputs, message):
    r = job.run(env="dev", registry="ghcr.io/acme/fns", all="true", **inputs)
    assert not r.ok and r.step("names").outcome == "failure"
    errors = [a.message for a in r.annotations if a.kind == "error"]
    assert len(errors) == 1 and errors[0].startswith(message.replace("%0A", "\n")), errors
    assert not [s for s in r.steps if s.id == "ship" and s.ran] and job.builds() == []


def test_the_docker_builder_gets_its_own_buildx_instance_and_buildah_needs_none(job):
    r = job.run(env="dev", registry="ghcr.io/acme/fns", all="true", builder="docker", push="false")
    assert r.ok, r.step("ship").stderr
    assert [a for a, _ in job.calls if a == "docker/setup-buildx-action"] == ["docker/setup-buildx-action"]
    assert all(" --builder builder-fnops-test " in f" {b} " for b in job.builds())
    job.calls.clear()
    r = job.run(env="dev", registry="ghcr.io/acme/fns", plan="true")  # the default: buildah
    assert r.ok and "docker/setup-buildx-action" not in [a for a, _ in job.calls]


# --- docker/build-push-action's inputs and outputs, through buildx --------------------------

def test_build_push_action_inputs_reach_buildx_and_its_outputs_come_back(job):
    secrets = "GIT_AUTH_TOKEN=ghp_s3cr3t%value\n\nNPM=a=b=c"
    r = job.run(env="dev", registry="ghcr.io/acme/fns", all="true", builder="docker", secrets=secrets,
                ssh="default", target="final", tags="latest, v1.2\nstable", no_cache="true",
                annotations="org.opencontainers.image.description=the cat\nindex:org.example.team=payments",
                github={"event": {"repository": {"visibility": "public"}}})
    ship = r.step("ship")
    assert r.ok, ship.stderr
    build, = job.builds()
    words = build.split(" ")
    pairs = {(words[i], words[i + 1]) for i in range(len(words) - 1)}
    repo = "ghcr.io/acme/fns/cat"
    assert {("--ssh", "default"), ("--target", "final"), ("-t", f"{repo}:latest"), ("-t", f"{repo}:v1.2"),
            ("-t", f"{repo}:stable")} <= pairs
    assert "--no-cache" in words and "--provenance=mode=max" in words  # a public repository's default
    assert "--annotation org.opencontainers.image.description=the cat --annotation index:org.example.team=payments" \
        in build
    # each secret reached the builder as a file holding exactly its value, gone after the step
    seen = [line.split("|") for line in job.secrets.read_text().splitlines()]
    assert [v for v, _ in seen] == ["id=GIT_AUTH_TOKEN=ghp_s3cr3t%value", "id=NPM=a=b=c"]
    assert all(not os.path.exists(src) and src.startswith(str(job.tmp)) for _, src in seen)
    assert "ghp_s3cr3t%value" in r.masks and "a=b=c" in r.masks
    assert not any("ghp_s3cr3t" in line for line in r.log) and "ghp_s3cr3t" not in ship.stdout
    # outputs as build-push-action names them
    assert r.outputs["imageid"] == CONFIG_DIGEST and r.outputs["digest"] == INDEX_DIGEST
    meta = json.loads(r.outputs["metadata"])
    assert meta == {"cat": {"containerimage.digest": INDEX_DIGEST, "containerimage.config.digest": CONFIG_DIGEST,
                            "image.name": "x"}}
    row, = json.loads(r.outputs["functions"])
    assert row["imageid"] == CONFIG_DIGEST and row["metadata"] == meta["cat"]


def test_a_secret_line_without_an_id_stops_the_step_and_shows_no_value(job):
    r = job.run(env="dev", registry="ghcr.io/acme/fns", all="true", builder="docker",
                secrets="GOOD=1\njust-a-value-no-equals")
    ship = r.step("ship")
    assert ship.outcome == "failure" and job.builds() == []
    errors = [a.message for a in r.annotations if a.kind == "error"]
    assert errors == ["secrets: line 2 is not ID=VALUE (ID: letters, digits, '_', '.', '-')"]
    assert "just-a-value-no-equals" not in ship.stderr + ship.stdout


@pytest.mark.parametrize("visibility,extra_env,driver,provenance,expect", [
    ("public", {}, "docker-container", "", "--provenance=mode=max"),
    ("private", {}, "docker-container", "", "--provenance=mode=min,inline-only=true"),
    ("internal", {}, "docker-container", "", "--provenance=mode=min,inline-only=true"),
    ("public", {"BUILDX_NO_DEFAULT_ATTESTATIONS": "true"}, "docker-container", "", "--provenance=false"),
    ("public", {}, "docker", "", "--provenance=false"),  # the docker driver cannot: no default, no refusal
    ("public", {}, "docker-container", "false", "--provenance=false"),
    ("private", {}, "docker-container", "true", "--provenance=true"),
    ("private", {}, "docker-container", "mode=max", "--provenance=mode=max"),
])
def test_provenance_defaults_as_build_push_action_does(job, visibility, extra_env, driver, provenance, expect):
    inputs = {"provenance": provenance} if provenance else {}
    r = job.run(env="dev", registry="ghcr.io/acme/fns", all="true", builder="docker", **{"buildx-builder": "ci"},
                extra_env={"FAKE_DRIVER": driver, **extra_env}, github={"event": {"repository": {
                    "visibility": visibility}}}, **inputs)
    assert r.ok, r.step("ship").stderr
    build, = job.builds()
    assert expect in build.split(" ")
    warned = [a.message for a in r.annotations if a.kind == "warning" and "provenance attestation records" in a.message]
    assert bool(warned) == (expect != "--provenance=false" and driver != "docker")


def test_explicit_provenance_on_the_docker_driver_is_refused_and_buildah_has_none(job, monkeypatch):
    r = job.run(env="dev", registry="ghcr.io/acme/fns", all="true", builder="docker", provenance="true",
                **{"buildx-builder": "default"}, extra_env={"FAKE_DRIVER": "docker"})
    assert r.step("ship").outcome == "failure" and job.builds() == []
    assert "uses the 'docker' driver, which cannot attach provenance" in r.step("ship").stderr
    from click.testing import CliRunner

    from fnops.cli import cli

    monkeypatch.chdir(job.work)
    plain = ["ship", "--env", "dev", "--registry", "ghcr.io/acme/fns", "--plan", "--builder", "buildah"]
    ok = CliRunner().invoke(cli, [*plain, "--default-provenance", "mode=max"])  # a default: buildah has none
    assert ok.exit_code == 0, ok.output
    bad = CliRunner().invoke(cli, [*plain, "--provenance"])
    assert bad.exit_code == 2 and "attestations need --builder docker" in bad.output


@pytest.mark.parametrize("args,message", [
    (["--tag", "ghcr.io/acme/x:latest"], "is not a tag"),
    (["--secret", "src=/tmp/x"], "want id=ID,src=FILE or id=ID,env=VAR"),
    (["--annotation", "novalue"], "is not KEY=VALUE"),
    (["--provenance=mode"], "is not true, false or attributes"),
    (["--target", "-x"], "is not a build stage name"),
])
def test_ship_refuses_malformed_build_inputs_in_one_line(job, args, message, monkeypatch):
    from click.testing import CliRunner

    from fnops.cli import cli

    monkeypatch.chdir(job.work)
    r = CliRunner().invoke(cli, ["ship", "--env", "dev", "--registry", "ghcr.io/acme/fns", "--plan", *args])
    assert r.exit_code == 2 and message in r.output, r.output


# --- the same inputs through buildah, for real --------------------------------------------

SECRET = "s3cr3t-value"
# The build checks the secret by its hash: the RUN line itself goes into the image's history.
SECRET_DOCKERFILE = """FROM {base} AS build
RUN --mount=type=secret,id=token python3 -c "import hashlib, sys; \
sys.exit(hashlib.sha256(open('/run/secrets/token', 'rb').read()).hexdigest() != '{sha}')" && echo mounted > /proof
FROM build AS final
RUN echo final > /final
"""


@pytest.mark.skipif(containers.have_tools() is not None, reason=f"needs {containers.have_tools()} (installed by .ci/run)")
def test_buildah_builds_with_secrets_target_tags_and_annotations(job, tmp_path):
    (tmp_path / "registry").mkdir()
    with containers.registry_with_base(str(tmp_path / "registry")) as (reg, base):
        cat = os.path.join(job.work, "functions", "cat")
        with open(os.path.join(cat, "Dockerfile"), "w") as f:
            f.write(SECRET_DOCKERFILE.format(base=base, sha=hashlib.sha256(SECRET.encode()).hexdigest()))
        git(job.work, "commit", "--quiet", "-am", "a secret at build time")
        r = job.run(env="dev", registry=f"{reg.host}/fns", all="true", secrets=f"token={SECRET}",
                    target="build", tags="latest", no_cache="true", pin="false",
                    annotations="org.opencontainers.image.description=the cat",
                    extra_env={"GITHUB_SHA": head(job.work)})
        ship = r.step("ship")
        assert r.ok, ship.stderr
        assert r.step("names").outputs["builder"] == "buildah"
        row, = json.loads(r.outputs["functions"])
        tag = row["image"].split("@")[0].rsplit(":", 1)[1]
        assert reg.tags("fns/cat") == sorted(["latest", tag])
        assert reg.manifest_digest("fns/cat", "latest") == reg.manifest_digest("fns/cat", tag) == row["digest"]
        ref = f"docker://{reg.host}/fns/cat@{row['digest']}"
        raw = json.loads(subprocess.run(["skopeo", "inspect", "--tls-verify=false", "--raw", ref],
                                        capture_output=True, text=True, check=True).stdout)
        assert raw["annotations"]["org.opencontainers.image.description"] == "the cat"
        assert r.outputs["imageid"] == raw["config"]["digest"] == row["imageid"]
        meta = json.loads(r.outputs["metadata"])["cat"]
        assert meta == {"image.name": f"{reg.host}/fns/cat:{tag},{reg.host}/fns/cat:latest",
                        "containerimage.digest": row["digest"], "containerimage.config.digest": raw["config"]["digest"]}
        # the `build` stage: the secret was mounted (its check passed) and is in no layer; `final` was not built
        files = _image_files(reg.host, row["digest"], tmp_path)
        assert "proof" in files and "final" not in files
        assert not any(SECRET.encode() in blob for blob in _layers(reg.host, row["digest"], tmp_path))
        assert SECRET in r.masks


def _layers(host, digest, tmp_path):
    out = tmp_path / f"img-{digest[7:19]}"
    if not out.exists():
        subprocess.run(["skopeo", "copy", "--quiet", "--src-tls-verify=false", f"docker://{host}/fns/cat@{digest}",
                        f"dir:{out}"], check=True, capture_output=True)
    return [p.read_bytes() for p in out.iterdir() if re.fullmatch(r"[0-9a-f]{64}", p.name)]


def _image_files(host, digest, tmp_path) -> set[str]:
    import io
    import tarfile

    names = set()
    for blob in _layers(host, digest, tmp_path):
        try:
            with tarfile.open(fileobj=io.BytesIO(blob)) as t:
                names |= {m.name.lstrip("./") for m in t.getmembers()}
        except tarfile.TarError:
            continue  # the config blob
    return names


# --- README's tables are action.yml's -------------------------------------------------------

def _table(text: str, first: str) -> list[list[str]]:
    """The rows of the Markdown table whose header starts with `| first |`."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"| {first} |"))
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        rows.append([c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]])
    return rows


def test_the_readme_tables_are_the_actions_inputs_and_outputs():
    with open(os.path.join(ROOT, "action.yml")) as f:
        action = yaml.safe_load(f)
    with open(os.path.join(ROOT, "README.md")) as f:
        readme = f.read()
    inputs = {}
    for name, default, _ in _table(readme, "input"):
        inputs[name.strip("`")] = default
    expected = {}
    for name, spec in action["inputs"].items():
        if spec.get("required"):
            expected[name] = "(required)"
        else:
            default = str(spec.get("default", ""))
            expected[name] = "`\"\"`" if default == "" else f"`{default}`"
    assert inputs == expected
    outputs = [row[0].strip("`") for row in _table(readme, "output")]
    assert sorted(outputs) == sorted(action["outputs"]) and len(outputs) == len(set(outputs))
