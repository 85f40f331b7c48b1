"""A pushed image holds the function folder's own files and nothing of the runner: links
out of the folder, FIFOs and devices are refused before anything is built or pushed."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

import containers
from conftest import fnops
from gitrepo import git, head
from test_reproducible import commit, fresh_store, image_files, new_repo

pytestmark = pytest.mark.skipif(containers.have_tools() is not None, reason=f"needs {containers.have_tools()}")

PLAIN = 'def handle(event, context):\n    return event\n'


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    with containers.registry_with_base(str(tmp_path_factory.mktemp("registry"))) as rb:
        yield rb


def ship(work, registry, *args, **env):
    reg, base = registry
    return fnops("ship", "--env", "dev", "--registry", f"{reg.host}/fns", "--base-image", base, "--output", "json",
                 *args, cwd=work, env={"GITHUB_SHA": head(work), **containers.BUILDAH_ENV, **env}, timeout=600)


def test_links_inside_the_folder_stay_links_and_the_image_holds_nothing_else(tmp_path, registry):
    work, _ = new_repo(tmp_path, "# none\n", handler=PLAIN)
    fn = tmp_path / "work" / "functions" / "hello"
    (fn / "data").mkdir()
    (fn / "data" / "table.txt").write_text("1,2,3\n")
    os.symlink("data/table.txt", fn / "alias.txt")
    os.symlink("../handler.py", fn / "data" / "up.py")  # up and back in: still inside
    commit(work, "links", when=1_790_000_100)
    r = ship(work, registry, CONTAINERS_STORAGE_CONF=fresh_store(tmp_path, "s"))
    assert r.returncode == 0, r.stderr
    image = json.loads(r.stdout)["functions"][0]["image"].split("@")[0]
    env = {**os.environ, **containers.BUILDAH_ENV}
    c = subprocess.run(["buildah", "from", "--quiet", "--tls-verify=false", image], env=env, capture_output=True,
                       text=True, check=True).stdout.strip()
    try:
        root = subprocess.run(["buildah", "mount", c], env=env, capture_output=True, text=True,
                              check=True).stdout.strip()
        assert os.readlink(os.path.join(root, "app/alias.txt")) == "data/table.txt"
        assert os.readlink(os.path.join(root, "app/data/up.py")) == "../handler.py"
        assert sorted(os.listdir(os.path.join(root, "app"))) == [
            ".fnops", "Dockerfile", "alias.txt", "data", "function.yaml", "handler.py", "requirements.txt"]
    finally:
        subprocess.run(["buildah", "rm", c], env=env, capture_output=True)
    assert image_files(image, ["/app/data/table.txt"]) == {"/app/data/table.txt": b"1,2,3\n"}


@pytest.mark.parametrize("name,target", [
    ("environ", "/proc/self/environ"),
    ("auth.json", "SECRET"),                 # an absolute path to a file on the runner
    ("escape.txt", "../../../SECRET-REL"),   # relative, out of the folder
    ("data/deep.txt", "../../hello-twin/handler.py"),
])
def test_a_link_out_of_the_folder_is_refused_and_nothing_is_pushed(tmp_path, registry, name, target):
    secret = tmp_path / "runner-secret.json"
    secret.write_text('{"auths": {"ghcr.io": {"auth": "c2VjcmV0"}}}\n')
    work, bare = new_repo(tmp_path, "# none\n", handler=PLAIN)
    fn = tmp_path / "work" / "functions" / "hello"
    target = str(secret) if target == "SECRET" else target.replace("SECRET-REL", "runner-secret.json")
    (fn / os.path.dirname(name)).mkdir(parents=True, exist_ok=True)
    os.symlink(target, fn / name)
    commit(work, "a link", when=1_790_000_100)
    reg, _ = registry
    tags = reg.tags("fns/hello")
    r = ship(work, registry)
    assert r.returncode == 2, r.stderr
    assert r.stderr.strip() == (f"functions/hello/{name}:1:1: symlink to {target!r} leaves the function folder; the "
                                "build context holds only the folder's own files (commit the file itself)")
    assert "c2VjcmV0" not in r.stdout + r.stderr
    assert reg.tags("fns/hello") == tags and git(bare, "log", "--format=%s", "main") == "functions"


def test_a_fifo_is_refused_by_name_without_hanging(tmp_path, registry):
    work, _ = new_repo(tmp_path, "# none\n", handler=PLAIN)
    fn = tmp_path / "work" / "functions" / "hello"
    os.mkfifo(fn / "pipe")
    r = ship(work, registry, "--dry-run")
    assert r.returncode == 2
    assert r.stderr.strip().startswith("functions/hello/pipe:1:1: not a regular file or directory")


def test_dockerfile_functions_and_fnops_run_use_the_same_checked_context(tmp_path):
    from fnops.delivery.runtimes import build_context
    from fnops.errors import SpecError
    from fnops.spec import load_function

    fn = tmp_path / "cat"
    fn.mkdir()
    (fn / "function.yaml").write_text("runtime: dockerfile\n")
    (fn / "Dockerfile").write_text("FROM scratch\nCOPY . /\n")
    os.symlink("/etc/hostname", fn / "host")
    with pytest.raises(SpecError) as e:
        build_context(load_function(str(fn), None))
    assert [p.path for p in e.value.problems] == [f"{fn}/host"]
    r = fnops("run", "cat", "--functions-dir", str(tmp_path), "--no-reload", timeout=60)
    assert r.returncode == 2 and "host:1:1: symlink to '/etc/hostname' leaves the function folder" in r.stderr
