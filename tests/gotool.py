"""Building the Go programs the tests drive (tests/conformance with its Tekton and KEDA-scaler
binaries, tests/argocd-notifications): one place that finds Go — a failure in CI, a visible
skip on a laptop without it — and builds only from the pinned modules."""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import pytest

_VERSION = re.compile(r"go(\d+)\.(\d+)(?:\.(\d+))?")


def go_env(modfile: str | None = None) -> dict:
    """go.sum is the pin: no build rewrites go.mod/go.sum, nor fetches another toolchain. A
    harness that asks `go list -m` where its modules are needs the -modfile it was built with."""
    env = dict(os.environ)
    env["GOFLAGS"] = (env.get("GOFLAGS", "") + " -mod=readonly" + (f" -modfile={modfile}" if modfile else "")).strip()
    env["GOTOOLCHAIN"] = "local"
    return env


def min_go(module_dir: str) -> tuple[int, ...]:
    """The `go` line of the module's go.mod: with GOTOOLCHAIN=local nothing older builds it."""
    with open(os.path.join(module_dir, "go.mod")) as f:
        m = re.search(r"^go (\d+)\.(\d+)(?:\.(\d+))?", f.read(), re.M)
    return tuple(int(x or 0) for x in m.groups())


def _dotted(v: tuple[int, ...]) -> str:
    return ".".join(map(str, v))


def require_go(module_dir: str, what: str) -> str:
    """The `go` command for building `module_dir`; without a new enough one, CI fails and a
    laptop skips, both saying why."""
    go, want, why = shutil.which("go"), min_go(module_dir), None
    if not go:
        why = "Go is not on PATH"
    else:
        out = subprocess.run([go, "env", "GOVERSION"], capture_output=True, text=True, env=go_env(), timeout=60)
        m = _VERSION.match(out.stdout.strip())
        have = tuple(int(x or 0) for x in m.groups()) if m else ()
        if have < want:
            why = f"Go {out.stdout.strip() or '?'} is older than {_dotted(want)}"
    if why:
        msg = f"{why}: {what} needs Go ≥ {_dotted(want)} on PATH"
        if os.environ.get("CI") == "true":
            pytest.fail(msg, pytrace=False)
        pytest.skip(msg)
    return go


def build_test_binary(module_dir: str, dest, what: str, *, pkg: str = ".", modfile: str | None = None,
                      flags: tuple = ()) -> str:
    """`go test -c` of `pkg` into `dest`. Unoptimised: the harnesses run for seconds, and that
    saves a good part of a cold build."""
    go = require_go(module_dir, what)
    r = subprocess.run([go, "test", "-c", "-gcflags=all=-N -l", "-ldflags=-s -w", *flags, "-o", str(dest), pkg],
                       cwd=module_dir, env=go_env(modfile), capture_output=True, text=True, timeout=1800)
    if r.returncode != 0:
        pytest.fail(f"building {what} ({modfile or 'go.mod'}) failed:\n{r.stdout}{r.stderr}", pytrace=False)
    return str(dest)
