import os
import shutil
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
EXAMPLES = os.path.join(ROOT, "examples", "functions")
sys.path.insert(0, HERE)


def example_functions():
    return sorted(d for d in os.listdir(EXAMPLES) if os.path.isfile(os.path.join(EXAMPLES, d, "function.yaml")))


def example_envs(name):
    rel = os.path.join(EXAMPLES, name, "releases")
    return sorted(f[:-5] for f in os.listdir(rel) if f.endswith(".yaml"))


def fnops(*args, cwd=None, env=None, timeout=60):
    """Run the installed console script as Argo CD would: a fresh process."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("ARGOCD_", "FNOPS_"))}
    base.update(env or {})
    exe = shutil.which("fnops") or sys.executable
    cmd = [exe, *args] if exe != sys.executable else [exe, "-m", "fnops", *args]
    return subprocess.run(cmd, cwd=cwd, env=base, capture_output=True, text=True, timeout=timeout)


def stop_process(proc, timeout: float = 15) -> None:
    """SIGTERM, then SIGKILL if it does not go in time: every process a test starts ends."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def fn_dir(tmp_path):
    """A copy of an example function to break."""

    def make(name="hello", folder=None):
        dst = tmp_path / (folder or name)
        shutil.copytree(os.path.join(EXAMPLES, name), dst)
        return dst

    return make


@pytest.fixture(scope="session")
def pg_server():
    """One real PostgreSQL server for the session (tests reset its schema)."""
    import postgres

    why = postgres.missing()
    if why:
        pytest.skip(f"needs {why} (installed by .ci/run)")
    server = postgres.PostgresServer()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path):
    """An empty outbox of each kind, as its URL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/outbox.db"
    server = request.getfixturevalue("pg_server")
    server.reset()
    return server.dsn


@pytest.fixture
def make_bridge(tmp_path):
    """make(**kw) -> a started Bridge; all stop at the end, and the doubles saw no invalid call."""
    from bridge_harness import Bridge

    made = []

    def make(**kw):
        where = tmp_path / f"b{len(made)}"
        where.mkdir()
        b = Bridge(where, **kw)
        made.append(b)
        return b.start()

    yield make
    for b in made:
        b.stop()
        assert b.slack.violations == [] and b.gh.violations == []
