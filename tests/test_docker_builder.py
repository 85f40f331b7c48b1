"""The docker buildx builder cannot run here (no Docker engine); its command line is what
it promises: a per-function GitHub Actions cache scope, attestations only when asked,
push while building with rewritten timestamps (no push at all on a dry run), and the
digest read from --metadata-file."""

import json
import os
import stat
import subprocess

import pytest

from fnops.delivery.build import Docker, is_loopback


def test_buildx_command_has_cache_scope_and_attestation_switches(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    (tmp_path / "docker").write_text("#!/bin/sh\nexit 0\n")
    (tmp_path / "docker").chmod(0o755)
    d = Docker(provenance=True, sbom=False, gha_cache=True)
    cmd = d.command("/ctx", "/ctx/Dockerfile", "ghcr.io/acme/fns/hello:sha-1", "/tmp/m.json",
                    build_args=["BASE_IMAGE=python:3.12-slim"], scope="fnops-hello")
    assert cmd[:3] == ["docker", "buildx", "build"] and cmd[-1] == "/ctx"
    assert "--provenance=true" in cmd and "--sbom=false" in cmd
    assert cmd[cmd.index("--output") + 1] == "type=registry,rewrite-timestamp=true"
    assert cmd[cmd.index("--cache-from") + 1] == "type=gha,scope=fnops-hello"
    assert cmd[cmd.index("--cache-to") + 1] == "type=gha,mode=max,scope=fnops-hello"
    assert cmd[cmd.index("--metadata-file") + 1] == "/tmp/m.json"
    assert "--cache-from" not in Docker(gha_cache=False).command("/c", "/c/D", "r:t", "/m", scope="s")
    dry = d.command("/ctx", "/ctx/Dockerfile", "r:t", "/m", push=False)
    assert dry[dry.index("--output") + 1] == "type=cacheonly" and "--push" not in dry


def test_buildx_digest_comes_from_the_metadata_file(monkeypatch, tmp_path):
    """A stand-in `docker` that writes the metadata file as buildx does."""
    digest = "sha256:" + "d" * 64
    script = tmp_path / "docker"
    script.write_text("#!/bin/sh\nwhile [ $# -gt 0 ]; do if [ \"$1\" = --metadata-file ]; then "
                      f"printf '%s' '{json.dumps({'containerimage.digest': digest})}' > \"$2\"; fi; shift; done\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    d = Docker(gha_cache=False)
    d.build(str(tmp_path), str(tmp_path / "Dockerfile"), "ghcr.io/acme/fns/hello:sha-1", timestamp=1795341600)
    assert d.push("ghcr.io/acme/fns/hello:sha-1") == digest


def test_buildx_gets_the_commit_time_as_source_date_epoch(monkeypatch, tmp_path):
    log = tmp_path / "env.log"
    script = tmp_path / "docker"
    script.write_text(f"#!/bin/sh\necho \"$SOURCE_DATE_EPOCH\" > {log}\n")
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    Docker(gha_cache=False).build(str(tmp_path), str(tmp_path / "D"), "r:t", timestamp=1795341600, push=False)
    assert log.read_text().strip() == "1795341600"


@pytest.mark.parametrize("ref,loop", [("127.0.0.1:5000/x", True), ("localhost:5000/x", True), ("[::1]:5000/x", True),
                                      ("127.1.2.3/x", True), ("ghcr.io/acme/x", False), ("10.0.0.1:5000/x", False)])
def test_only_loopback_registries_are_plain_http(ref, loop):
    assert is_loopback(ref) is loop


@pytest.mark.parametrize("driver,warned", [("docker", True), ("docker-container", False), ("remote", False)])
def test_ship_says_when_the_buildx_driver_cannot_build_reproducibly(monkeypatch, tmp_path, driver, warned):
    """A stand-in `docker`: `buildx inspect` answers as buildx does; builds write the metadata file."""
    from click.testing import CliRunner

    from fnops.cli import cli

    digest = "sha256:" + "e" * 64
    script = tmp_path / "bin" / "docker"
    script.parent.mkdir()
    script.write_text("#!/bin/sh\n"
                      f"if [ \"$2\" = inspect ]; then printf 'Name:   ci\\nDriver: {driver}\\n'; exit 0; fi\n"
                      "while [ $# -gt 0 ]; do if [ \"$1\" = --metadata-file ]; then "
                      f"printf '%s' '{json.dumps({'containerimage.digest': digest})}' > \"$2\"; fi; shift; done\n")
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{script.parent}{os.pathsep}{os.environ['PATH']}")
    work = tmp_path / "work"
    (work / "functions" / "cat").mkdir(parents=True)
    (work / "functions" / "cat" / "function.yaml").write_text("runtime: dockerfile\n")
    (work / "functions" / "cat" / "Dockerfile").write_text("FROM scratch\n")
    subprocess.run(["git", "init", "--quiet", str(work)], check=True)
    subprocess.run(["git", "-C", str(work), "add", "-A"], check=True)
    subprocess.run(["git", "-C", str(work), "-c", "user.name=t", "-c", "user.email=t@example.com", "commit",
                    "--quiet", "-m", "f"], check=True)
    monkeypatch.chdir(work)
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    r = CliRunner().invoke(cli, ["ship", "--env", "dev", "--registry", "ghcr.io/acme/fns", "--builder", "docker",
                                 "--no-pin", "--all"])
    assert r.exit_code == 0, r.output
    assert (r.output.count("::warning::docker buildx uses the 'docker' driver, which ignores rewrite-timestamp")
            == (1 if warned else 0))
