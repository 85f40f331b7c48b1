"""Fresh machine, same bytes: the function server's wheels come from the lock (not from
what is installed), a filled cache builds offline, and an unchanged folder — requirements
included — gives the same digest at a later commit and pins nothing new."""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import os
import shutil
import subprocess
import time
import zipfile
from http.server import SimpleHTTPRequestHandler

import pytest
import yaml

import containers
from conftest import fnops
from gitrepo import git, head, show
from loopback import LoopbackServer

pytestmark = pytest.mark.skipif(containers.have_tools() is not None, reason=f"needs {containers.have_tools()}")

HANDLER = 'import tinylib\n\n\ndef handle(event, context):\n    return {"hello": event, "lib": tinylib.VERSION}\n'


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("registry"))
    with containers.registry_with_base(root, "base/python-pip", with_pip=True) as rb:
        yield rb


@pytest.fixture(scope="module")
def locked_wheels():
    """The server.lock wheels as this machine's cache holds them (.ci/run fills it)."""
    from fnops.delivery.runtimes import vendor

    return vendor.wheels()


class _Files(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def serve(directory):
    """A find-links page on 127.0.0.1 (the directory listing), as a local wheel mirror."""
    return LoopbackServer(functools.partial(_Files, directory=str(directory)))


def make_wheel(directory, name, version, files: dict) -> tuple[str, str]:
    """A real (tiny) wheel pip installs; -> (path, sha256)."""
    dist = f"{name}-{version}.dist-info"
    members = dict(files)
    members[f"{dist}/METADATA"] = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
    members[f"{dist}/WHEEL"] = "Wheel-Version: 1.0\nGenerator: fnops-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    record = []
    for path, text in members.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(text.encode())}")
    members[f"{dist}/RECORD"] = "\n".join(record + [f"{dist}/RECORD,,"]) + "\n"
    path = os.path.join(str(directory), f"{name}-{version}-py3-none-any.whl")
    with zipfile.ZipFile(path, "w") as z:
        for member, text in members.items():
            z.writestr(zipfile.ZipInfo(member, (2020, 1, 1, 0, 0, 0)), text)
    with open(path, "rb") as f:
        return path, hashlib.sha256(f.read()).hexdigest()


def fake_site(tmp_path):
    """uvicorn and h11 'installed' at versions the lock does not name, and broken."""
    site = tmp_path / "site"
    for name in ("uvicorn", "h11"):
        (site / name).mkdir(parents=True)
        (site / name / "__init__.py").write_text("raise ImportError('not the locked library')\n")
        (site / f"{name}-0.0.1.dist-info").mkdir()
        (site / f"{name}-0.0.1.dist-info" / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.0.1\n")
    return str(site)


def new_repo(tmp_path, requirements: str, handler: str = HANDLER) -> tuple[str, str]:
    bare = str(tmp_path / "origin.git")
    git(tmp_path, "init", "--quiet", "--bare", "--initial-branch=main", bare)
    work = tmp_path / "work"
    git(tmp_path, "init", "--quiet", "--initial-branch=main", str(work))
    fn = work / "functions" / "hello"
    fn.mkdir(parents=True)
    (fn / "function.yaml").write_text("runtime: python3.11\n")
    (fn / "handler.py").write_text(handler)
    (fn / "requirements.txt").write_text(requirements)
    (work / "README.md").write_text("functions\n")
    commit(work, "functions", when=1_790_000_000)
    git(work, "remote", "add", "origin", bare)
    git(work, "push", "--quiet", "origin", "main")
    return str(work), bare


def commit(work, message, when):
    env = {**os.environ, "GIT_AUTHOR_NAME": "dev", "GIT_AUTHOR_EMAIL": "dev@example.com", "GIT_COMMITTER_NAME": "dev",
           "GIT_COMMITTER_EMAIL": "dev@example.com", "GIT_AUTHOR_DATE": f"@{when} +0000",
           "GIT_COMMITTER_DATE": f"@{when} +0000"}
    subprocess.run(["git", "add", "-A"], cwd=work, check=True, env=env)
    subprocess.run(["git", "commit", "--quiet", "-m", message], cwd=work, check=True, env=env)
    return git(work, "rev-parse", "HEAD")


def ship(work, registry, *args, **env):
    reg, base = registry
    return fnops("ship", "--env", "dev", "--registry", f"{reg.host}/fns", "--base-image", base, "--output", "json",
                 *args, cwd=work, env={"GITHUB_SHA": head(work), **containers.BUILDAH_ENV, **env}, timeout=600)


def fresh_store(tmp_path, name) -> str:
    """Another runner: an empty image store of its own."""
    conf = tmp_path / f"{name}.conf"
    conf.write_text(f'[storage]\ndriver = "vfs"\ngraphroot = "{tmp_path}/{name}-graph"\nrunroot = "{tmp_path}/{name}-run"\n')
    return str(conf)


def image_files(ref: str, paths) -> dict:
    """The bytes of `paths` inside a pushed image (buildah mount of a fresh container)."""
    env = {**os.environ, **containers.BUILDAH_ENV}
    c = subprocess.run(["buildah", "from", "--quiet", "--tls-verify=false", ref], env=env, capture_output=True,
                       text=True, check=True).stdout.strip()
    try:
        root = subprocess.run(["buildah", "mount", c], env=env, capture_output=True, text=True, check=True).stdout.strip()
        out = {}
        for p in paths:
            with open(os.path.join(root, p.lstrip("/")), "rb") as f:
                out[p] = f.read()
        return out
    finally:
        subprocess.run(["buildah", "rm", c], env=env, capture_output=True)


def test_the_server_libraries_come_from_the_lock_whatever_is_installed_and_build_offline(
        tmp_path, registry, locked_wheels):
    work, _ = new_repo(tmp_path, "# none\n", handler='def handle(event, context):\n    return event\n')
    cache = tmp_path / "cache"
    (cache / "wheels").mkdir(parents=True)
    for w in locked_wheels:
        shutil.copy(w, cache / "wheels")
    # No index at all: anything not in the cache would fail to fetch.
    r = ship(work, registry, FNOPS_CACHE_DIR=str(cache), PYTHONPATH=fake_site(tmp_path), PIP_NO_INDEX="1",
             PIP_FIND_LINKS=str(tmp_path / "nothing-here"))
    assert r.returncode == 0, r.stderr
    image = json.loads(r.stdout)["functions"][0]["image"]
    expected = {}
    for w in locked_wheels:
        with zipfile.ZipFile(w) as z:
            expected.update({f"/opt/fnops/vendor/{m}": z.read(m) for m in z.namelist()
                             if m.endswith("__init__.py") and ".dist-info" not in m})
    assert {"/opt/fnops/vendor/h11/__init__.py", "/opt/fnops/vendor/uvicorn/__init__.py"} <= set(expected)
    assert image_files(image.split("@")[0], expected) == expected


def test_a_fetch_is_hash_checked_by_pip_and_a_failure_says_pips_reason(tmp_path, registry, locked_wheels):
    work, bare = new_repo(tmp_path, "# none\n", handler='def handle(event, context):\n    return event\n')
    reg, _ = registry
    tags_before = reg.tags("fns/hello")
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    for w in locked_wheels:
        shutil.copy(w, mirror)
    with serve(mirror) as good:
        r = ship(work, registry, "--dry-run", FNOPS_CACHE_DIR=str(tmp_path / "c1"), PIP_NO_INDEX="1",
                 PIP_FIND_LINKS=good.url + "/")
    assert r.returncode == 0, r.stderr
    assert sorted(os.listdir(tmp_path / "c1" / "wheels")) == sorted(os.path.basename(w) for w in locked_wheels)
    # A mirror that serves other bytes under the locked name: pip refuses, fnops says why.
    h11 = next(mirror / os.path.basename(w) for w in locked_wheels if os.path.basename(w).startswith("h11-"))
    with zipfile.ZipFile(h11, "a") as z:
        z.writestr("h11/_planted.py", "STOLEN = True\n")
    with serve(mirror) as bad:
        r = ship(work, registry, FNOPS_CACHE_DIR=str(tmp_path / "c2"), PIP_NO_INDEX="1", PIP_FIND_LINKS=bad.url + "/")
    assert r.returncode == 1
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("fnops: cannot fetch the function server's wheels"), r.stderr
    assert "pip:" in lines[0] and "hash" in lines[0].lower()
    assert reg.tags("fns/hello") == tags_before and git(bare, "log", "--format=%s", "main") == "functions"


def test_an_unchanged_folder_with_requirements_gives_the_same_digest_at_a_later_commit(
        tmp_path, registry, locked_wheels):
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    # A module big enough that pip byte-compiles it: its .pyc would carry the install time.
    _, sha = make_wheel(wheels, "tinylib", "1.0", {"tinylib/__init__.py": "VERSION = '1.0'\n" * 50})
    with serve(wheels) as mirror:
        reqs = f"--no-index\n--find-links {mirror.url}/\ntinylib==1.0 --hash=sha256:{sha}\n"
        work, bare = new_repo(tmp_path, reqs)
        first = ship(work, registry)
        assert first.returncode == 0, first.stderr
        assert "not pinned" not in first.stderr
        digest = json.loads(first.stdout)["functions"][0]["digest"]
        pinned_at = git(bare, "rev-parse", "main")
        git(work, "pull", "--quiet", "--rebase", "origin", "main")
        # A day later, a commit elsewhere in the repository; then a re-ship of everything,
        # on another runner (empty image store, empty wheel cache).
        (tmp_path / "work" / "README.md").write_text("functions, documented\n")
        later = commit(work, "docs", when=1_790_086_400)
        git(work, "push", "--quiet", "origin", "main")
        time.sleep(1.1)  # pip's bytecode would now carry another second
        plan = ship(work, registry, "--plan")
        assert json.loads(plan.stdout)["plan"] == [], plan.stdout
        cache = tmp_path / "second-cache" / "wheels"
        cache.mkdir(parents=True)
        for w in locked_wheels:
            shutil.copy(w, cache)
        again = ship(work, registry, "--all", CONTAINERS_STORAGE_CONF=fresh_store(tmp_path, "second"),
                     FNOPS_CACHE_DIR=str(cache.parent))
        assert again.returncode == 0, again.stderr
    out = json.loads(again.stdout)
    assert [(f["function"], f["digest"], f["reason"]) for f in out["functions"]] == [
        ("hello", digest, "unchanged (same digest)")]
    assert out["commit"] is None and git(bare, "rev-parse", "main") == later != pinned_at
    assert yaml.safe_load(show(bare, "functions/hello/releases/dev.yaml"))["image"].endswith(digest)
    assert os.listdir(tmp_path / "second-graph")  # it really built again


def test_unpinned_requirements_build_with_a_warning_on_the_line(tmp_path, registry):
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    make_wheel(wheels, "tinylib", "1.0", {"tinylib/__init__.py": "VERSION = '1.0'\n"})
    with serve(wheels) as mirror:
        work, _ = new_repo(tmp_path, f"--no-index\n--find-links {mirror.url}/\n\ntinylib>=1.0\n")
        r = ship(work, registry, "--dry-run", GITHUB_ACTIONS="true")
    assert r.returncode == 0, r.stderr
    assert ("fnops: warning: functions/hello/requirements.txt:4:1: 'tinylib>=1.0' is not pinned to one version "
            "(name==version): a rebuild may install a newer release and give another digest") in r.stderr.splitlines()
    assert any(x.startswith("::warning file=functions/hello/requirements.txt,line=4::") for x in r.stderr.splitlines())
