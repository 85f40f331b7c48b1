#!/usr/bin/env python3
"""fnops' own cost around a build, and bump latency under contention.

1. `fnops ship` of one python function (detect + build context + build + push + pin commit)
   against a bare `buildah bud && buildah push` of the very context fnops generates (with
   the same reproducible-build flags), both into a docker-registry on 127.0.0.1, base image
   built from scratch (never pulled). The two alternate which goes first in each run, so
   neither warms the other's cache. Prints the medians and the ratio; the difference is
   fnops' overhead (reading the pins at the tip, the build context, the pin commit).
2. Parallel builds: `fnops ship --all --no-pin` of N functions with `--jobs 1` against the
   default (the CPU count), alternating which goes first.
3. 8 `fnops bump` processes of different functions started at once against one bare repo:
   wall time of each until its pin is pushed (rebase-retry included).

    python benchmarks/ship.py [--runs 5] [--functions 4]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests"))

import containers  # noqa: E402  (test helpers: the registry and the scratch-built base image)

ENV = {**os.environ, **containers.BUILDAH_ENV, "SOURCE_DATE_EPOCH": "1795341600"}


def sh(*args, cwd=None, env=ENV):
    subprocess.run(args, cwd=cwd, env=env, check=True, capture_output=True, text=True)


def functions_repo(tmp: str, n: int) -> tuple[str, str]:
    bare, work = os.path.join(tmp, "origin.git"), os.path.join(tmp, "work")
    sh("git", "init", "-q", "--bare", "--initial-branch=main", bare)
    sh("git", "init", "-q", "--initial-branch=main", work)
    for i in range(n):
        d = os.path.join(work, "functions", f"fn{i}")
        os.makedirs(os.path.join(d, "releases"))
        with open(os.path.join(d, "function.yaml"), "w") as f:
            f.write("runtime: python3.11\n")
        with open(os.path.join(d, "handler.py"), "w") as f:
            f.write(f"def handle(event, context):\n    return {{'fn': {i}}}\n")
    for cmd in (["git", "add", "-A"], ["git", "-c", "user.name=b", "-c", "user.email=b@x", "commit", "-qm", "fns"],
                ["git", "remote", "add", "origin", bare], ["git", "push", "-q", "origin", "main"]):
        sh(*cmd, cwd=work)
    return bare, work


def head(work: str) -> str:
    return subprocess.run(["git", "rev-parse", "HEAD"], cwd=work, capture_output=True, text=True,
                          check=True).stdout.strip()


def bench_ship(reg, base, runs: int) -> None:
    fnops = shutil.which("fnops")
    sys.path.insert(0, os.path.join(ROOT, "plugin"))
    from fnops.delivery import runtimes
    from fnops.spec import load_function

    from fnops.delivery.build import Buildah

    ship_t, bare_t = [], []
    for i in range(runs):
        tmp = tempfile.mkdtemp(prefix="fnops-bench-")
        try:
            _, work = functions_repo(tmp, 1)
            with open(os.path.join(work, "functions", "fn0", "handler.py"), "a") as f:
                f.write(f"# run {i}\n")  # a new layer each run, as a real change would be
            sh("git", "-c", "user.name=b", "-c", "user.email=b@x", "commit", "-qam", f"run {i}", cwd=work)

            def run_ship():
                t0 = time.perf_counter()
                sh(fnops, "ship", "--env", "dev", "--registry", f"{reg.host}/bench", "--base-image", base,
                   cwd=work, env={**ENV, "GITHUB_SHA": head(work)})
                ship_t.append(time.perf_counter() - t0)

            def run_bare():
                ctx, dockerfile = runtimes.build_context(load_function(os.path.join(work, "functions", "fn0"), "dev"),
                                                         base)
                with open(os.path.join(ctx, "handler.py"), "a") as f:
                    f.write(f"# bare {i}\n")
                ref = f"{reg.host}/bare/fn0:run{i}"
                b = Buildah()  # the same storage driver as fnops' builds
                cmd = b.command(ctx, dockerfile, ref, tls_verify=False, timestamp=1795341600)
                t0 = time.perf_counter()
                sh(*cmd)
                sh(*b.exe, "push", "--quiet", "--tls-verify=false", ref, f"docker://{ref}")
                bare_t.append(time.perf_counter() - t0)
                sh(*b.exe, "rmi", ref)
                shutil.rmtree(ctx, ignore_errors=True)

            for step in ((run_ship, run_bare) if i % 2 == 0 else (run_bare, run_ship)):
                step()
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    s, b = statistics.median(ship_t), statistics.median(bare_t)
    print(f"ship   fnops ship (1 function)        median {s:6.2f} s  (n={runs})")
    print(f"bare   buildah bud && buildah push    median {b:6.2f} s")
    print(f"ratio  {s / b:.2f}x  (fnops overhead {s - b:+.2f} s per run)")


def bench_jobs(reg, base, runs: int, n: int) -> None:
    fnops = shutil.which("fnops")
    serial, parallel = [], []
    for i in range(runs):
        tmp = tempfile.mkdtemp(prefix="fnops-bench-jobs-")
        try:
            _, work = functions_repo(tmp, n)
            env = {**ENV, "GITHUB_SHA": head(work)}

            def timed(jobs, out):
                t0 = time.perf_counter()
                sh(fnops, "ship", "--env", "dev", "--registry", f"{reg.host}/jobs{i}", "--base-image", base, "--all",
                   "--no-pin", *(["--jobs", "1"] if jobs == 1 else []), cwd=work, env=env)
                out.append(time.perf_counter() - t0)

            for step in (((1, serial), (0, parallel)) if i % 2 == 0 else ((0, parallel), (1, serial))):
                timed(*step)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    s, p = statistics.median(serial), statistics.median(parallel)
    print(f"jobs   {n} functions: --jobs 1 median {s:.2f} s, default (--jobs {os.cpu_count()}) median {p:.2f} s: "
          f"{s / p:.2f}x faster")


def bench_bumps(n: int = 8) -> None:
    fnops = shutil.which("fnops")
    tmp = tempfile.mkdtemp(prefix="fnops-bench-")
    try:
        bare, work = functions_repo(tmp, n)
        sha = head(work)
        clones = []
        for i in range(n):
            c = os.path.join(tmp, f"c{i}")
            sh("git", "clone", "-q", bare, c)
            clones.append(c)
        procs = []
        start = time.perf_counter()
        for i, c in enumerate(clones):
            img = f"registry.example.com/fns/fn{i}:sha-{i:07d}@sha256:{str(i) * 64}"
            procs.append(subprocess.Popen([fnops, "bump", f"fn{i}", "--env", "dev", "--image", img,
                                           "--source-commit", sha, "--new-environment"], cwd=c, env=ENV,
                                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True))
        done, errors = [], []

        def wait(p):
            _, err = p.communicate()
            done.append(time.perf_counter() - start)
            if p.returncode:
                errors.append(err)

        import threading

        threads = [threading.Thread(target=wait, args=(p,)) for p in procs]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:
            raise SystemExit(f"bump failed: {errors[0]}")
        done.sort()
        print(f"bumps  {n} concurrent `fnops bump` of different functions: all landed; "
              f"p50 {statistics.median(done):.2f} s, max {done[-1]:.2f} s "
              f"(one bump alone ~{bench_single(bare, tmp, sha):.2f} s)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def bench_single(bare: str, tmp: str, sha: str) -> float:
    c = os.path.join(tmp, "single")
    sh("git", "clone", "-q", bare, c)
    t0 = time.perf_counter()
    sh(shutil.which("fnops"), "bump", "fn0", "--env", "prod", "--image",
       f"registry.example.com/fns/fn0:sha-9999999@sha256:{'9' * 64}", "--source-commit", sha,
       "--new-environment", cwd=c)
    return time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--functions", type=int, default=4)
    a = ap.parse_args()
    missing = containers.have_tools()
    if missing:
        raise SystemExit(f"needs {missing} (see .ci/run)")
    reg = containers.Registry(tempfile.mkdtemp(prefix="fnops-registry-"))
    try:
        base = containers.build_python_base(reg)
        bench_ship(reg, base, a.runs)
        bench_jobs(reg, base, a.runs, a.functions)
    finally:
        reg.stop()
    bench_bumps()
    return 0


if __name__ == "__main__":
    sys.exit(main())
