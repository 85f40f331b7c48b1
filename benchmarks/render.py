#!/usr/bin/env python3
"""`fnops render` as a whole process vs the floor `python -c "import yaml"`.

Argo CD runs the CMP once per app per commit, so start-up dominates. Runs are
interleaved (floor, render, floor, render, …) so machine noise hits both alike;
prints the medians side by side and their ratio. Budget: ≤ 2.0×, aim 1.5×.

The package's bytecode is compiled first, as `pip install` does when the CMP image is
built: with PYTHONDONTWRITEBYTECODE set (as on this machine) an editable install would
otherwise recompile every module on every run and measure the size of the source.

    python benchmarks/render.py [--runs 40] [--function examples/functions/checkout] [--env prod]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sysconfig
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def timed(cmd, env) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=40)
    ap.add_argument("--function", default=os.path.join(ROOT, "examples", "functions", "checkout"))
    ap.add_argument("--env", default="prod")
    ap.add_argument("--max-ratio", type=float, default=2.0, help="exit 1 above this ratio")
    a = ap.parse_args()
    # The console script next to this interpreter: a version-manager shim on PATH (pyenv)
    # would add its own shell start-up and measure that instead of fnops.
    exe = os.path.join(sysconfig.get_path("scripts"), "fnops")
    if not os.path.exists(exe):
        exe = shutil.which("fnops")
    render = [exe, "render", a.function, "--env", a.env] if exe else [sys.executable, "-m", "fnops", "render", a.function, "--env", a.env]
    floor = [sys.executable, "-c", "import yaml"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARGOCD_")}
    import compileall

    import fnops

    compileall.compile_dir(os.path.dirname(fnops.__file__), quiet=1)
    for _ in range(3):  # warm the page cache and .pyc files
        timed(floor, env), timed(render, env)
    fl, rn = [], []
    for _ in range(a.runs):
        fl.append(timed(floor, env))
        rn.append(timed(render, env))
    f, r = statistics.median(fl), statistics.median(rn)
    ratio = r / f
    print(f"floor  python -c 'import yaml'   median {f * 1000:7.1f} ms  (n={a.runs})")
    print(f"render {' '.join(os.path.basename(x) if i == 0 else x for i, x in enumerate(render[:2]))} … median {r * 1000:7.1f} ms")
    print(f"ratio  {ratio:.2f}x  (budget {a.max_ratio:.1f}x, aim 1.5x)")
    return 0 if ratio <= a.max_ratio else 1


if __name__ == "__main__":
    sys.exit(main())
