"""The house rules (README "What is here"): rooms import downwards only, nothing imports in
a circle, the render path loads only spec + render + the shared leaves, and no build
artefact is tracked."""

from __future__ import annotations

import ast
import os
import subprocess
import sys

import fnops

PKG = os.path.dirname(fnops.__file__)
ROOT = os.path.dirname(os.path.dirname(PKG))

# Lower layers never import higher ones. Leaves are the top-level modules of `fnops`.
LAYER = {"leaf": 0, "spec": 1, "render": 2, "delivery": 3, "bridge": 4, "local": 4, "cli": 5}
LEAVES = {"errors", "types", "lazyre", "yamldoc", "escape", "jsondepth"}


def _modules():
    for dirpath, _, files in os.walk(PKG):
        for f in files:
            if f.endswith(".py"):
                path = os.path.join(dirpath, f)
                rel = os.path.relpath(path, os.path.dirname(PKG))[:-3].replace(os.sep, ".")
                yield (rel[: -len(".__init__")] if rel.endswith(".__init__") else rel), path


def _imports(name: str, path: str) -> set[str]:
    """fnops modules `name` imports (module level and inside functions alike)."""
    is_pkg = path.endswith("__init__.py")
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read())
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.split(".")[0] == "fnops"}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".")
                base = base[: len(base) - node.level + (1 if is_pkg else 0)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            if mod.split(".")[0] != "fnops":
                continue
            if mod != "fnops":  # every fnops import runs the root package anyway
                out.add(mod)
            for a in node.names:  # `from . import pins` imports a module
                out.add(f"{mod}.{a.name}")
    return out


def _graph():
    mods = dict(_modules())
    return {m: {i for i in _imports(m, p) if i in mods and i != m} for m, p in mods.items()}


def _room(mod: str) -> str:
    parts = mod.split(".")
    if len(parts) == 1:
        return "leaf"  # the package itself re-exports the public API
    return parts[1] if parts[1] in LAYER else "leaf"


def test_no_module_imports_upward():
    bad = []
    for mod, deps in _graph().items():
        if mod in ("fnops", "fnops.__main__", "fnops.entry"):
            continue  # the public API and the entry points sit on top
        for d in deps:
            if LAYER[_room(d)] > LAYER[_room(mod)]:
                bad.append(f"{mod} ({_room(mod)}) imports {d} ({_room(d)})")
    assert not bad, "\n".join(sorted(bad))


def test_leaves_are_the_shared_few():
    top = {m.split(".")[1] for m in _graph() if m.count(".") == 1 and _room(m) == "leaf"}
    assert top <= LEAVES | {"__main__", "entry"}, top - LEAVES


def test_no_import_cycles():
    graph = _graph()
    # Package __init__ files re-export their children; an edge child -> parent package is
    # not a cycle of jobs, so only module-to-module edges count.
    edges = {m: {d for d in ds if not m.startswith(d + ".")} for m, ds in graph.items()}
    state, stack, cycles = {}, [], []

    def visit(m):
        state[m] = 1
        stack.append(m)
        for d in sorted(edges[m]):
            if state.get(d) == 1:
                cycles.append(" -> ".join(stack[stack.index(d):] + [d]))
            elif d not in state:
                visit(d)
        stack.pop()
        state[m] = 2

    for m in sorted(edges):
        if m not in state:
            visit(m)
    assert not cycles, "\n".join(cycles)


def test_render_loads_only_spec_render_and_leaves():
    code = (
        "import sys, io, contextlib\n"
        "from fnops.entry import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        f"    rc = main(['render', {os.path.join(ROOT, 'examples', 'functions', 'checkout')!r}, '--env', 'prod'])\n"
        "assert rc == 0, rc\n"
        "print('\\n'.join(sorted(m for m in sys.modules if m.startswith('fnops.'))))\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    loaded = r.stdout.split()
    assert "fnops.render.cmp" in loaded
    assert not [m for m in loaded if _room(m) in ("delivery", "bridge", "cli")], loaded


def test_git_tracks_no_build_artefacts():
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    bad = [f for f in files if ".egg-info" in f or "__pycache__" in f or f.endswith((".pyc", ".whl"))
           or f.split("/")[0] in ("build", "dist")]
    assert not bad, bad
