"""What a CI log shows of a build: the builder's own tail, fenced by stop-commands in GitHub
Actions so nothing in it reads as a workflow command; and the buildx GitHub cache only when asked."""

from __future__ import annotations

import os

from fnops.delivery.build import BuildError, Docker


def test_a_failed_build_shows_its_tail_between_stop_commands_in_actions(monkeypatch):
    import gha_runner

    log = "\n".join([f"step {i}" for i in range(100)] + ["::stop-commands::evil", "x ##[add-mask]step",
                                                          "ERROR: No matching distribution ##[error]forged"])
    e = BuildError("build of r/hello:sha-1 failed: ERROR: No matching distribution ##[error]forged", log)
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
    plain = e.format().splitlines()
    assert plain[-1] == "fnops: build of r/hello:sha-1 failed: ERROR: No matching distribution ##[error]forged"
    assert plain[-2] == "  | ERROR: No matching distribution ##[error]forged" and len(plain) == BuildError.TAIL_LINES + 1
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    lines = e.format().splitlines()
    stop, resume = lines[0], lines[-1]
    token = stop.removeprefix("::stop-commands::")
    assert len(token) > 6 and resume == f"::{token}::" and lines[1:-1] == plain  # the tail and the error, fenced
    assert token != BuildError("x", log).format().splitlines()[0].removeprefix("::stop-commands::")  # fresh each time
    runner = gha_runner.Commands([])
    for line in lines:
        runner.feed(line)
    assert runner.annotations == [] and runner.processed == [] and runner.masks == [token]
    assert runner.log[-2] == plain[-1]  # the one-line error is shown as it is


def test_the_buildx_github_cache_is_on_only_when_asked(monkeypatch, tmp_path):
    (tmp_path / "docker").write_text("#!/bin/sh\nexit 0\n")
    (tmp_path / "docker").chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    for var in ("FNOPS_GHA_CACHE", "ACTIONS_CACHE_URL", "ACTIONS_RESULTS_URL"):
        monkeypatch.delenv(var, raising=False)
    assert Docker().gha_cache is False
    monkeypatch.setenv("ACTIONS_RESULTS_URL", "https://results.example/")  # exposed, but not asked for
    assert Docker().gha_cache is False
    monkeypatch.setenv("FNOPS_GHA_CACHE", "1")  # the action's gha-cache: true
    cmd = Docker().command("/c", "/c/D", "r:t", "/m", scope="fnops-hello")
    assert cmd[cmd.index("--cache-to") + 1] == "type=gha,mode=max,scope=fnops-hello"
