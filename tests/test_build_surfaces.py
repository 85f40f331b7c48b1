"""What a CI log shows of a build: the builder's own tail, the whole log in a GitHub Actions
group, nothing that reads as a workflow command; and the buildx GitHub cache only when asked."""

from __future__ import annotations

import os

from fnops.delivery.build import BuildError, Docker


def test_a_failed_build_shows_its_tail_and_groups_the_whole_log_in_actions(monkeypatch):
    log = "\n".join([f"step {i}" for i in range(100)] + ["::stop-commands::evil", "ERROR: No matching distribution"])
    e = BuildError("build of r/hello:sha-1 failed: ERROR: No matching distribution", log)
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
    plain = e.format().splitlines()
    assert plain[-1] == "fnops: build of r/hello:sha-1 failed: ERROR: No matching distribution"
    assert plain[-2] == "  | ERROR: No matching distribution" and len(plain) == BuildError.TAIL_LINES + 1
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    lines = e.format().splitlines()
    assert lines[0].startswith("::group::") and "::endgroup::" in lines
    inside = lines[1:lines.index("::endgroup::")]
    assert len(inside) == 102 and "step 0" in inside  # all of it, in the group
    assert not any(line.startswith("::") for line in inside)  # `::stop-commands::` in the log stays text


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
