"""The node runtimes, end to end with real parts: `fnops new` → `fnops run` / `fnops invoke`
(HTTP and both CloudEvent modes) → `fnops ship` (buildah build on a from-scratch Node.js
base, push to a loopback registry, pins in a bare Git remote) → `fnops render` (a
schema-valid Knative Service) → a rebuild on a fresh image store with the same digest; a
dependency installed by `npm ci` from a loopback npm registry, a tampered tarball refused
by npm; the function server's contract over real HTTP.

The host's node is what the base image runs, so the runtime used is `node<host major>`
(node20 on this machine)."""

from __future__ import annotations

import base64
import functools
import gzip
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import tarfile
import time
import urllib.error
import urllib.request
import uuid
from http.server import SimpleHTTPRequestHandler

import pytest
import yaml

import fnops.delivery.runtimes as runtimes
from fnops.spec.model import NODE_RUNTIMES

import containers
import node_base
import schemas
from conftest import fnops, stop_process
from gitrepo import git, head, show
from loopback import LoopbackServer

pytestmark = pytest.mark.skipif(node_base.missing() is not None, reason=f"needs {node_base.missing()}")


def runtime() -> str:
    return f"node{node_base.node_major()}"


# The base image runs this machine's node, so its major must be one of fnops' node runtimes
# (Debian 12's own nodejs is 18, past its end of life and not one of them).
supported_node = pytest.mark.skipif(node_base.missing() is None and runtime() not in NODE_RUNTIMES,
                                    reason="this machine's node is no runtime fnops supports "
                                           f"({', '.join(NODE_RUNTIMES)})")

SERVER = os.path.join(runtimes.HERE, "node", "server.js")
T0 = 1_790_000_000


@pytest.fixture(scope="module")
def bases(tmp_path_factory):
    """(registry, node-only base, node + npm base), built from scratch for this module."""
    reg = containers.Registry(str(tmp_path_factory.mktemp("registry")))
    try:
        plain, with_npm = node_base.build_node_bases(reg)
        yield reg, plain, with_npm
    finally:
        reg.stop()


def commit(work, message, when):
    env = {**os.environ, "GIT_AUTHOR_NAME": "dev", "GIT_AUTHOR_EMAIL": "dev@example.com", "GIT_COMMITTER_NAME": "dev",
           "GIT_COMMITTER_EMAIL": "dev@example.com", "GIT_AUTHOR_DATE": f"@{when} +0000",
           "GIT_COMMITTER_DATE": f"@{when} +0000"}
    subprocess.run(["git", "add", "-A"], cwd=work, check=True, env=env)
    subprocess.run(["git", "commit", "--quiet", "-m", message], cwd=work, check=True, env=env)
    return git(work, "rev-parse", "HEAD")


def new_repo(tmp_path) -> tuple[str, str]:
    bare = str(tmp_path / "origin.git")
    git(tmp_path, "init", "--quiet", "--bare", "--initial-branch=main", bare)
    work = tmp_path / "work"
    git(tmp_path, "init", "--quiet", "--initial-branch=main", str(work))
    (work / "README.md").write_text("functions\n")
    commit(work, "start", when=T0)
    git(work, "remote", "add", "origin", bare)
    git(work, "push", "--quiet", "origin", "main")
    return str(work), bare


def push(work, message, when):
    sha = commit(work, message, when)
    git(work, "push", "--quiet", "origin", "main")
    return sha


def ship(work, base, registry, *args, **env):
    return fnops("ship", "--env", "dev", "--registry", f"{registry.host}/fns", "--base-image", base, "--output", "json",
                 *args, cwd=work, env={"GITHUB_SHA": head(work), **containers.BUILDAH_ENV, **env}, timeout=900)


def fresh_store(tmp_path, name) -> str:
    """Another runner: an empty image store of its own."""
    conf = tmp_path / f"{name}.conf"
    conf.write_text(f'[storage]\ndriver = "vfs"\ngraphroot = "{tmp_path}/{name}-graph"\nrunroot = "{tmp_path}/{name}-run"\n')
    return str(conf)


class Run:
    """A `fnops run` process, its stderr in a file; stopped by the test's finally."""

    def __init__(self, cwd, *args):
        self.path = os.path.join(cwd, f"run-{uuid.uuid4().hex[:8]}.log")
        self.log = open(self.path, "w")
        self.env = {**os.environ, "FNOPS_RUN_DIR": os.path.join(cwd, ".run-state")}
        self.proc = subprocess.Popen([shutil.which("fnops"), "run", *args], cwd=cwd, stdout=subprocess.DEVNULL,
                                     stderr=self.log, env=self.env)

    def text(self) -> str:
        with open(self.path) as f:
            return f.read()

    def port(self, timeout=30) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            m = re.search(r"^serving \S+ .* on http://127\.0\.0\.1:(\d+)/", self.text(), re.M)
            if m:
                return int(m.group(1))
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError(f"fnops run did not serve:\n{self.text()}")

    def stop(self):
        stop_process(self.proc)
        self.log.close()


def invoke(cwd, *args):
    return fnops("invoke", *args, cwd=cwd, env={"FNOPS_RUN_DIR": os.path.join(cwd, ".run-state")})


def image_files(ref: str, paths) -> dict:
    """The bytes of `paths` inside a pushed image (None where there is no such file)."""
    env = {**os.environ, **containers.BUILDAH_ENV}
    buildah = ["buildah", "--storage-driver", "vfs"]
    c = subprocess.run([*buildah, "from", "--quiet", "--tls-verify=false", ref], env=env, capture_output=True,
                       text=True, check=True).stdout.strip()
    try:
        root = subprocess.run([*buildah, "mount", c], env=env, capture_output=True, text=True, check=True).stdout.strip()
        out = {}
        for p in paths:
            full = os.path.join(root, p.lstrip("/"))
            if os.path.isfile(full):
                with open(full, "rb") as f:
                    out[p] = f.read()
            else:
                out[p] = True if os.path.exists(full) else None
        return out
    finally:
        subprocess.run([*buildah, "rm", c], env=env, capture_output=True)
        subprocess.run([*buildah, "rmi", ref], env=env, capture_output=True)


@supported_node
def test_a_node_function_goes_new_run_invoke_ship_render_and_rebuilds_to_the_same_digest(tmp_path, bases):
    reg, plain, _ = bases
    work, bare = new_repo(tmp_path)
    assert fnops("new", "hello", "--runtime", runtime(), cwd=work).returncode == 0
    r = fnops("new", "orders", "--runtime", runtime(), "--template", "cloudevents", cwd=work)
    assert r.returncode == 0, r.stderr
    assert sorted(os.listdir(os.path.join(work, "functions", "hello"))) == [
        "function.yaml", "handler.js", "package-lock.json", "package.json", "releases"]

    # The local loop: this machine's node runs the image's server, on fnops run's socket.
    runs = [Run(work, "hello", "--port", "0"), Run(work, "orders", "--port", "0")]
    try:
        for run in runs:
            run.port()
        r = invoke(work, "hello", "--query", "name=ada")
        assert r.returncode == 0 and json.loads(r.stdout) == {"message": "hello, ada"}, r.stderr
        r = invoke(work, "hello", "--data", '{"name": 7}')
        assert r.returncode == 1 and json.loads(r.stdout) == {"error": "name must be a string"}
        r = invoke(work, "orders", "--cloudevent", "com.example.order.created", "--id", "e-9", "--data", '{"id": 7}')
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout) == {"order": 7, "acknowledges": "e-9"}
        assert "  type: com.example.order.acknowledged\n  source: /functions/orders\n" in r.stderr
        assert "  subject: 7\n" in r.stderr
        r = invoke(work, "orders", "--cloudevent", "com.example.order.created", "--structured", "--id", "e-10",
                   "--data", '{"id": 8}')
        assert r.returncode == 0 and json.loads(r.stdout) == {"order": 8, "acknowledges": "e-10"}, r.stderr
        r = invoke(work, "orders", "--data", "{}")
        assert r.returncode == 1 and "send a CloudEvent" in r.stdout
        assert re.search(r"^POST / 200 [\d.]+ms ce-type=com\.example\.order\.created$", runs[1].text(), re.M)
    finally:
        for run in runs:
            run.stop()
    os.remove(runs[0].path), os.remove(runs[1].path)
    shutil.rmtree(os.path.join(work, ".run-state"), ignore_errors=True)

    # Ship: a real buildah build on the from-scratch base, a push, the pins in Git.
    push(work, "hello and orders", when=T0 + 60)
    first = ship(work, plain, reg)
    assert first.returncode == 0, first.stderr
    shipped = {f["function"]: f for f in json.loads(first.stdout)["functions"]}
    assert sorted(shipped) == ["hello", "orders"]
    for name, f in shipped.items():
        pin = yaml.safe_load(show(bare, f"functions/{name}/releases/dev.yaml"))
        assert pin["image"] == f"{reg.host}/fns/{name}:sha-{head(work)[:7]}@{f['digest']}"
        assert reg.manifest_digest(f"fns/{name}", f"sha-{head(work)[:7]}") == f["digest"]
    image = shipped["hello"]["image"]
    files = image_files(image.split("@")[0], ["/opt/fnops/server.js", "/app/handler.js", "/app/node_modules",
                                              "/opt/fnops/.npm-tmp"])
    with open(SERVER, "rb") as f:
        assert files["/opt/fnops/server.js"] == f.read()
    assert b"exports.handle" in files["/app/handler.js"]
    assert files["/app/node_modules"] is None and files["/opt/fnops/.npm-tmp"] is None  # no deps: npm never ran

    # Render what Argo CD would: a Knative Service that an API server accepts.
    git(work, "pull", "--quiet", "--rebase", "origin", "main")
    r = fnops("render", "functions/hello", "--env", "dev", cwd=work)
    assert r.returncode == 0, r.stderr
    objs = [o for o in yaml.safe_load_all(r.stdout) if o]
    svc = next(o for o in objs if o["kind"] == "Service" and o["apiVersion"].startswith("serving.knative.dev"))
    assert schemas.validate(svc) == []
    container = svc["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == image

    # Another runner, a day later, an unrelated commit: the same folder gives the same digests.
    (tmp_path / "work" / "README.md").write_text("functions, documented\n")
    later = push(work, "docs", when=T0 + 86_400)
    time.sleep(1.1)
    again = ship(work, plain, reg, "--all", CONTAINERS_STORAGE_CONF=fresh_store(tmp_path, "second"))
    assert again.returncode == 0, again.stderr
    out = json.loads(again.stdout)
    assert sorted((f["function"], f["digest"], f["reason"]) for f in out["functions"]) == [
        (name, shipped[name]["digest"], "unchanged (same digest)") for name in ("hello", "orders")]
    assert out["commit"] is None and git(bare, "rev-parse", "main") == later
    assert os.listdir(tmp_path / "second-graph")  # it really built again


def make_tarball(path, name, version, files: dict) -> str:
    """An npm package tarball (package/…), written to `path`; -> its sha512 integrity."""
    buf = io.BytesIO()
    members = {"package.json": json.dumps({"name": name, "version": version, "main": "index.js"}), **files}
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as t:
        for member, text in members.items():
            data = text.encode()
            info = tarfile.TarInfo(f"package/{member}")
            info.size, info.mtime, info.mode = len(data), 499162500, 0o644
            t.addfile(info, io.BytesIO(data))
    raw = gzip.compress(buf.getvalue(), mtime=0)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(raw)
    return "sha512-" + base64.b64encode(hashlib.sha512(raw).digest()).decode()


class _Files(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def write_function_with_a_dependency(work, url, integrity):
    fn = os.path.join(work, "functions", "uses")
    os.makedirs(fn, exist_ok=True)
    with open(os.path.join(fn, "function.yaml"), "w") as f:
        f.write(f"runtime: {runtime()}\n")
    with open(os.path.join(fn, "handler.js"), "w") as f:
        f.write("const tinylib = require('tinylib');\nexports.handle = (event) => ({ lib: tinylib.VERSION, event });\n")
    with open(os.path.join(fn, "package.json"), "w") as f:
        json.dump({"name": "uses", "version": "1.0.0", "private": True, "dependencies": {"tinylib": "1.0.0"},
                   "devDependencies": {"never-installed": "9.9.9"}}, f, indent=2)
    lock = {"name": "uses", "version": "1.0.0", "lockfileVersion": 3, "requires": True, "packages": {
        "": {"name": "uses", "version": "1.0.0", "dependencies": {"tinylib": "1.0.0"},
             "devDependencies": {"never-installed": "9.9.9"}},
        "node_modules/tinylib": {"version": "1.0.0", "resolved": url, "integrity": integrity},
        "node_modules/never-installed": {"version": "9.9.9", "resolved": url.replace("tinylib", "never-installed"),
                                         "integrity": "sha512-" + "A" * 86 + "==", "dev": True}}}
    with open(os.path.join(fn, "package-lock.json"), "w") as f:
        json.dump(lock, f, indent=2)
    return fn


def answer_of_image(ref: str, body: bytes) -> dict:
    """Run the pushed image's own command (its USER, its CMD) with `buildah run` and POST `body`."""
    env = {**os.environ, **containers.BUILDAH_ENV}
    buildah = ["buildah", "--storage-driver", "vfs"]
    c = subprocess.run([*buildah, "from", "--quiet", "--tls-verify=false", ref], env=env, capture_output=True,
                       text=True, check=True).stdout.strip()
    port = containers.free_port()
    try:
        config = json.loads(subprocess.run([*buildah, "inspect", "--type", "container", c], env=env,
                                           capture_output=True, text=True, check=True).stdout)["OCIv1"]["config"]
        assert config["User"] == "65532:65532"
        proc = subprocess.Popen([*buildah, "run", "--env", f"PORT={port}", "--env", "HOST=127.0.0.1", c, "--",
                                 *config["Cmd"]], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1).close()
                    break
                except OSError:
                    assert time.monotonic() < deadline and proc.poll() is None, proc.stderr.read()
                    time.sleep(0.1)
            return json.loads(call(port, "/", body, {"content-type": "application/json"})[2])
        finally:
            stop_process(proc)
            proc.stderr.close()
    finally:
        subprocess.run([*buildah, "rm", c], env=env, capture_output=True)
        subprocess.run([*buildah, "rmi", ref], env=env, capture_output=True)


@supported_node
def test_dependencies_are_installed_by_npm_ci_from_the_lockfile_and_a_tampered_tarball_fails_the_build(
        tmp_path, bases):
    reg, _, with_npm = bases
    served = tmp_path / "npm-registry"
    tarball = str(served / "tinylib" / "-" / "tinylib-1.0.0.tgz")
    index = "exports.VERSION = '1.0.0';\n"
    integrity = make_tarball(tarball, "tinylib", "1.0.0", {"index.js": index})
    with LoopbackServer(functools.partial(_Files, directory=str(served))) as npm_registry:
        work, bare = new_repo(tmp_path)
        fn = write_function_with_a_dependency(work, f"{npm_registry.url}/tinylib/-/tinylib-1.0.0.tgz", integrity)
        # A developer's own install (for fnops run) is not what goes into the image.
        os.makedirs(os.path.join(fn, "node_modules", "tinylib"))
        with open(os.path.join(fn, "node_modules", "tinylib", "index.js"), "w") as f:
            f.write("exports.VERSION = 'from the laptop';\n")
        with open(os.path.join(work, ".gitignore"), "w") as f:
            f.write("node_modules/\n")
        with open(os.path.join(fn, ".npmrc"), "w") as f:  # committed by mistake: its token stays out of the image
            f.write("//npm.example.com/:_authToken=npm_s3cretTOKENvalue\n")
        push(work, "uses tinylib", when=T0 + 60)
        r = ship(work, with_npm, reg)
        assert r.returncode == 0, r.stderr
        image = json.loads(r.stdout)["functions"][0]["image"]
        files = image_files(image.split("@")[0], ["/app/node_modules/tinylib/index.js",
                                                  "/app/node_modules/never-installed", "/opt/fnops/.npm-tmp",
                                                  "/root/.npm", "/app/.npmrc"])
        assert files == {"/app/node_modules/tinylib/index.js": index.encode(), "/app/node_modules/never-installed": None,
                         "/opt/fnops/.npm-tmp": None, "/root/.npm": None, "/app/.npmrc": None}
        assert answer_of_image(image.split("@")[0], b'{"n": 1}') == {"lib": "1.0.0", "event": {"n": 1}}
        # npm's cache, logs and times leave nothing behind: another runner builds the same bytes.
        git(work, "pull", "--quiet", "--rebase", "origin", "main")
        time.sleep(1.1)
        again = ship(work, with_npm, reg, "--all", CONTAINERS_STORAGE_CONF=fresh_store(tmp_path, "second"))
        assert again.returncode == 0, again.stderr
        assert [(f["digest"], f["reason"]) for f in json.loads(again.stdout)["functions"]] == [
            (image.split("@")[1], "unchanged (same digest)")]

        # The registry now serves other bytes under the locked URL: npm refuses them.
        make_tarball(tarball, "tinylib", "1.0.0", {"index.js": "exports.VERSION = 'planted';\n"})
        with open(os.path.join(fn, "handler.js"), "a") as f:
            f.write("// a change, so it ships again\n")
        pinned = push(work, "change", when=T0 + 120)
        tags = reg.tags("fns/uses")
        r = ship(work, with_npm, reg)
    assert r.returncode == 1, r.stderr
    assert "npm error code EINTEGRITY" in r.stderr and "integrity checksum failed" in r.stderr, r.stderr
    assert reg.tags("fns/uses") == tags and git(bare, "rev-parse", "main") == pinned  # nothing pushed or pinned


@supported_node
def test_dependencies_without_a_lockfile_are_refused_before_anything_is_built(tmp_path, bases):
    reg, plain, _ = bases
    work, bare = new_repo(tmp_path)
    fn = os.path.join(work, "functions", "loose")
    os.makedirs(fn)
    with open(os.path.join(fn, "function.yaml"), "w") as f:
        f.write(f"runtime: {runtime()}\n")
    with open(os.path.join(fn, "handler.js"), "w") as f:
        f.write("exports.handle = () => 'hi';\n")
    with open(os.path.join(fn, "package.json"), "w") as f:
        f.write('{\n  "name": "loose",\n  "dependencies": {"left-pad": "^1.3.0"}\n}\n')
    sha = push(work, "loose", when=T0 + 60)
    r = ship(work, plain, reg)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [
        "functions/loose/package.json:3:3: 'dependencies' without a package-lock.json: the build installs with "
        "`npm ci`, exactly what the lockfile pins (integrity-checked); run `npm install --package-lock-only` in the "
        "folder and commit package-lock.json"], r.stderr
    assert reg.tags("fns/loose") == [] and git(bare, "rev-parse", "main") == sha
    r = fnops("validate", "functions/loose", cwd=work)  # found before a push, too
    assert r.returncode == 2 and "functions/loose/package.json:3:3: 'dependencies' without a package-lock.json" \
        in r.stderr


@supported_node
def test_fnops_run_says_which_package_is_missing_and_how_to_install_it(tmp_path):
    fn = tmp_path / "functions" / "needy"
    fn.mkdir(parents=True)
    (fn / "function.yaml").write_text(f"runtime: {runtime()}\n")
    (fn / "handler.js").write_text("const lib = require('tinylib');\nexports.handle = () => lib.VERSION;\n")
    r = fnops("run", "needy", "--port", "0", "--no-reload", cwd=tmp_path,
              env={"FNOPS_RUN_DIR": str(tmp_path / "state")}, timeout=60)
    assert r.returncode == 1
    assert ("needy did not start: functions/needy/handler.js:1:13: requires 'tinylib', which is not in "
            "functions/needy/node_modules; add it to package.json (`npm install tinylib` there) or, if it is listed, "
            "install the lockfile's packages with `npm ci --prefix functions/needy`") in r.stderr, r.stderr


CONTRACT = r"""
exports.handle = async (event, context) => {
  switch (context.path) {
    case '/echo': return { event: Buffer.isBuffer(event) ? event.toString('hex') : event, context };
    case '/none': return null;
    case '/text': return 'plain text';
    case '/bytes': return Buffer.from([0, 1, 2]);
    case '/list': return [1, 'two'];
    case '/status': return context.reply({ error: 'no such order' }, 404);
    case '/accepted': return context.reply(null, 202);
    case '/headers': return context.reply('<b>hi</b>', 201, { 'content-type': 'text/html', 'x-trace': 't1' });
    case '/ce': return { specversion: '1.0', type: 'com.example.reply', source: '/echo', subject: 'héllo wörld',
                         data: { ok: true } };
    case '/ce-bytes': return context.reply({ specversion: '1.0', type: 't', source: '/s', id: 'r-1',
                                             data_base64: Buffer.from('hi').toString('base64') }, 202);
    case '/ce-no-type': return { specversion: '1.0', source: '/s' };
    case '/bad-header': return context.reply('x', 200, { 'x-a': 'one\r\ntwo' });
    case '/throw': throw new Error('kaboom');
    case '/stray': Promise.reject(new Error('left behind')); return 'answered';
    default: return { path: context.path };
  }
};
"""


@pytest.fixture
def contract(tmp_path):
    (tmp_path / "handler.js").write_text(CONTRACT)
    port = containers.free_port()
    env = {**os.environ, "PORT": str(port), "HOST": "127.0.0.1", "FNOPS_MAX_BODY": "1024",
           "FNOPS_HANDLER": "handler:handle"}
    log = open(tmp_path / "server.log", "w")
    proc = subprocess.Popen([node_base.node_binary(), SERVER], cwd=tmp_path, env=env, stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline and proc.poll() is None, (tmp_path / "server.log").read_text()
                time.sleep(0.05)
        yield port, tmp_path / "server.log"
    finally:
        stop_process(proc)
        log.close()


def call(port, path, body=None, headers=None, method="POST"):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=body, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, dict(r.headers.items()), r.read()
    except urllib.error.HTTPError as e:
        with e:
            return e.code, dict(e.headers.items()), e.read()


def test_the_node_server_keeps_the_python_runtimes_contract(contract):
    port, log = contract
    status, h, body = call(port, "/echo?a=1&a=2&b=&c=x%20y", b'{"n": 1}', {"content-type": "application/json",
                                                                           "X-Trace": "t1"})
    out = json.loads(body)
    assert status == 200 and h["content-type"] == "application/json"
    assert out["event"] == {"n": 1}
    assert {k: out["context"][k] for k in ("method", "path", "query", "params", "cloudevent")} == {
        "method": "POST", "path": "/echo", "query": "a=1&a=2&b=&c=x%20y", "params": {"a": "2", "c": "x y"},
        "cloudevent": None}
    assert out["context"]["headers"]["x-trace"] == "t1" and "reply" not in out["context"]
    assert json.loads(call(port, "/echo", b"a=b", {"content-type": "application/x-www-form-urlencoded"})[2])["event"] \
        == "a=b"
    assert json.loads(call(port, "/echo", b"\x00\xff", {"content-type": "image/png"})[2])["event"] == "00ff"
    assert json.loads(call(port, "/echo", method="GET")[2])["event"] is None
    # binary and structured CloudEvents: the same attributes, the data as the event
    status, _, body = call(port, "/echo", b'{"id": 7}', {"content-type": "application/json", "ce-specversion": "1.0",
                                                        "ce-id": "e-1", "ce-source": "/orders", "ce-type": "t.created",
                                                        "ce-subject": "h%C3%A9llo", "ce-traceparent": "00-ab"})
    assert json.loads(body)["event"] == {"id": 7} and json.loads(body)["context"]["cloudevent"] == {
        "specversion": "1.0", "id": "e-1", "source": "/orders", "type": "t.created", "subject": "héllo",
        "traceparent": "00-ab", "datacontenttype": "application/json"}
    structured = {"specversion": "1.0", "id": "e-2", "source": "/orders", "type": "t.paid",
                  "datacontenttype": "text/plain", "data_base64": base64.b64encode(b"paid").decode()}
    body = call(port, "/echo", json.dumps(structured).encode(), {"content-type": "application/cloudevents+json"})[2]
    assert json.loads(body)["event"] == "paid" and json.loads(body)["context"]["cloudevent"] == {
        "specversion": "1.0", "id": "e-2", "source": "/orders", "type": "t.paid", "datacontenttype": "text/plain"}
    assert call(port, "/echo", b'{"specversion": "1.0"}', {"content-type": "application/cloudevents+json"})[:1] == (400,)
    assert call(port, "/echo", b"{", {"content-type": "application/json"})[0] == 400
    # the reply table
    assert call(port, "/none")[0] == 204
    _, h, body = call(port, "/text")
    assert (h["content-type"], body) == ("text/plain; charset=utf-8", b"plain text")
    assert call(port, "/bytes")[1]["content-type"] == "application/octet-stream"
    assert call(port, "/list")[2] == b'[1,"two"]'
    assert call(port, "/status")[0::2] == (404, b'{"error":"no such order"}')
    assert call(port, "/accepted")[0::2] == (202, b"")
    status, h, body = call(port, "/headers")
    assert (status, h["content-type"], h["x-trace"], body) == (201, "text/html", "t1", b"<b>hi</b>")
    status, h, body = call(port, "/ce")
    assert status == 200 and json.loads(body) == {"ok": True} and h["content-type"] == "application/json"
    assert (h["ce-specversion"], h["ce-type"], h["ce-source"], h["ce-subject"]) == (
        "1.0", "com.example.reply", "/echo", "h%C3%A9llo%20w%C3%B6rld")
    assert uuid.UUID(h["ce-id"])
    status, h, body = call(port, "/ce-bytes")
    assert (status, h["ce-id"], h["content-type"], body) == (202, "r-1", "application/octet-stream", b"hi")
    # its own failures: 500 with nothing of the reason sent, the reason logged
    for path in ("/ce-no-type", "/bad-header", "/throw"):
        assert call(port, path)[0::2] == (500, b'{"error":"internal error"}'), path
    assert call(port, "/echo", b"x" * 2048, {"content-type": "text/plain"})[0] == 413
    assert call(port, "/stray")[0::2] == (200, b"answered")  # a promise left to fail later is logged, and
    assert call(port, "/readyz", method="GET")[0::2] == (200, b"ok")  # the server lives on
    text = log.read_text()
    assert "CloudEvent reply needs type" in text and "Error: kaboom" in text and "line breaks" in text
    assert "a promise the handler did not wait for failed\nError: left behind" in text


def test_the_scaffold_is_what_npm_ci_accepts_and_renders_as_a_python_function_would(tmp_path):
    r = fnops("new", "greet", "--runtime", "node22", "--dir", "node", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    folder = tmp_path / "node" / "greet"
    # The lockfile is in step with package.json (npm ci refuses it otherwise), offline: nothing to fetch.
    p = subprocess.run(["npm", "ci", "--offline", "--ignore-scripts", "--no-audit", "--no-fund"], cwd=folder,
                       capture_output=True, text=True, timeout=120,
                       env={**os.environ, "npm_config_cache": str(tmp_path / "npm-cache"),
                            "npm_config_update_notifier": "false"})
    assert p.returncode == 0, p.stderr
    # Rendered the same way as a python runtime: the same Service, probes, port.
    python = tmp_path / "python" / "greet"
    python.mkdir(parents=True)
    (python / "function.yaml").write_text((folder / "function.yaml").read_text().replace("runtime: node22",
                                                                                         "runtime: python3.12"))
    pin = f"image: registry.example.com/functions/greet:sha-abcdef0@sha256:{'c' * 64}\n"
    renders = []
    for f in (folder, python):
        (f / "releases").mkdir(exist_ok=True)
        (f / "releases" / "dev.yaml").write_text(pin)
        r = fnops("render", str(f), "--env", "dev")
        assert r.returncode == 0, r.stderr
        renders.append(r.stdout)
    assert renders[0] == renders[1] and "kind: Service" in renders[0]


@supported_node
def test_fnops_run_reloads_a_node_function_on_save_without_refusing_a_request(tmp_path):
    fn = tmp_path / "functions" / "live"
    fn.mkdir(parents=True)
    (fn / "function.yaml").write_text(f"runtime: {runtime()}\nenv: {{GREETING: hi}}\n")
    (fn / "handler.js").write_text("exports.handle = () => ({ version: 1, greeting: process.env.GREETING });\n")
    run = Run(str(tmp_path), "live", "--port", "0")
    try:
        port = run.port()
        assert json.loads(invoke(str(tmp_path), "live").stdout) == {"version": 1, "greeting": "hi"}
        (fn / "handler.js").write_text("exports.handle = async () => ({ version: 2 });\n")
        answers = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and "reloaded live" not in run.text():
            answers.append(call(port, "/", b"{}", {"content-type": "application/json"})[0])
        assert "reloaded live" in run.text(), run.text()
        assert set(answers) == {200}  # every request during the switch was answered
        assert json.loads(invoke(str(tmp_path), "live").stdout) == {"version": 2}
        (fn / "handler.js").write_text("exports.handle = () => {\n")  # a half-saved file
        run_text = run.text()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and "still serving the previous version" not in run.text()[len(run_text):]:
            time.sleep(0.1)
        assert ("reload failed, still serving the previous version: functions/live/handler.js:2: SyntaxError: "
                "Unexpected end of input") in run.text(), run.text()
        assert json.loads(invoke(str(tmp_path), "live").stdout) == {"version": 2}
    finally:
        run.stop()
