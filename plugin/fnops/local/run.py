"""`fnops run`: serve a function folder locally, as its image would, and restart it when
the folder changes.

python runtimes run the very server the image runs (runtimes/python/server.py) with this
installation's uvicorn, the function's `env:` after its environment's overlay, and the
variables Knative sets (K_SERVICE, PORT). `envFrom` secrets and config maps live in the
cluster and are not read here. `runtime: dockerfile` functions are built with buildah and
run with `buildah run` (chroot isolation shares this machine's network)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

from ..delivery import runtimes
from ..errors import FnopsError, UsageError
from ..spec import load_function

WATCH_SKIP = {"releases", "__pycache__", ".git", ".fnops", ".venv", "node_modules"}


def snapshot(folder: str) -> dict:
    """(path -> mtime, size) of what a change to would change the function."""
    out = {}
    for root, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if d not in WATCH_SKIP and not d.startswith(".")]
        for f in files:
            p = os.path.join(root, f)
            try:
                st = os.stat(p)
            except OSError:
                continue
            out[p] = (st.st_mtime_ns, st.st_size)
    return out


def environment(fn, port: int, host: str) -> dict:
    env = dict(os.environ)
    env.update(dict(fn.env))
    env.update({"PORT": str(port), "HOST": host, "FNOPS_HANDLER": fn.handler, "K_SERVICE": fn.name,
                "K_REVISION": f"{fn.name}-local", "K_CONFIGURATION": fn.name, "PYTHONUNBUFFERED": "1",
                "FNOPS_GRACEFUL_SECONDS": "1"})
    return env


class PythonServer:
    def __init__(self, fn, port: int, host: str):
        self.fn, self.port, self.host = fn, port, host

    def start(self) -> subprocess.Popen:
        server = os.path.join(runtimes.HERE, "python", "server.py")
        return subprocess.Popen([sys.executable, server], cwd=self.fn.folder, env=environment(self.fn, self.port,
                                                                                               self.host))

    def close(self) -> None:
        pass


def _loopback_bases(dockerfile: str) -> bool:
    """Whether a FROM names an image on a loopback registry (plain HTTP, as `ship` treats it).
    A base written through an ARG cannot be known here and keeps TLS verification on."""
    from ..delivery.build import is_loopback

    with open(dockerfile, encoding="utf-8") as f:
        for line in f:
            words = line.split()
            if words and words[0].upper() == "FROM":
                image = next((w for w in words[1:] if not w.startswith("--")), "")
                if is_loopback(image):
                    return True
    return False


class BuildahServer:
    """A dockerfile function: build its image with the builder `ship` uses, run its command
    under `buildah run`."""

    def __init__(self, fn, port: int, host: str):
        from ..delivery.build import Buildah

        self.fn, self.port, self.host = fn, port, host
        self.builder = Buildah()  # says how to install buildah when it is missing
        self.env = self.builder.env
        self.container = None

    def _buildah(self, *args: str) -> str:
        p = subprocess.run(["buildah", *args], env=self.env, capture_output=True, text=True)
        if p.returncode != 0:
            tail = " | ".join(p.stderr.strip().splitlines()[-3:])
            raise FnopsError(f"buildah {args[0]} failed: {tail}")
        return p.stdout.strip()

    def start(self) -> subprocess.Popen:
        import shutil

        self.close()
        ctx, dockerfile = runtimes.build_context(self.fn)
        ref = f"localhost/fnops-run/{self.fn.name}:dev"
        try:
            self.builder.build(ctx, dockerfile, ref, tls_verify=not _loopback_bases(dockerfile))
        finally:
            shutil.rmtree(ctx, ignore_errors=True)
        self.container = self._buildah("from", "--pull-never", ref)
        config = json.loads(self._buildah("inspect", "--type", "container", self.container))
        image = config.get("OCIv1", {}).get("config", {})
        command = (image.get("Entrypoint") or []) + (image.get("Cmd") or [])
        if not command:
            raise UsageError(f"{self.fn.folder}/Dockerfile: the image has no CMD or ENTRYPOINT to run")
        envs = []
        for k, v in environment(self.fn, self.port, self.host).items():
            if k in dict(self.fn.env) or k in ("PORT", "HOST", "K_SERVICE", "K_REVISION", "K_CONFIGURATION"):
                envs += ["--env", f"{k}={v}"]
        return subprocess.Popen(["buildah", "run", *envs, self.container, "--", *command], env=self.env)

    def close(self) -> None:
        if self.container:
            subprocess.run(["buildah", "rm", self.container], env=self.env, capture_output=True)
            self.container = None


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def serve(folder: str, env: str | None, port: int, host: str = "127.0.0.1", reload: bool = True,
          say=print, interval: float = 0.4) -> int:
    """Run until interrupted; restart whenever the folder changes (function.yaml included)."""
    fn = load_function(folder, env)
    if fn.runtime == "image":
        raise UsageError(f"{folder}: runtime 'image' is built elsewhere; run that image instead")
    kind = BuildahServer if fn.runtime == "dockerfile" else PythonServer
    runner = kind(fn, port, host)
    proc = runner.start()
    say(f"serving {fn.name} [{env or 'no environment'}] on http://{host}:{port}/ (ctrl-c to stop)")
    seen = snapshot(folder)
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    try:
        while not stopping:
            time.sleep(interval)
            if not reload:
                if proc.poll() is not None:
                    return proc.returncode
                continue
            now = snapshot(folder)
            if now != seen:
                seen = now
                _stop(proc)
                try:
                    fn = load_function(folder, env)
                except FnopsError as e:  # a half-saved file: say so, keep watching
                    say(e.format())
                    continue
                runner.fn = fn
                proc = runner.start()
                say(f"reloaded {fn.name}")
    except KeyboardInterrupt:
        pass
    finally:
        _stop(proc)
        runner.close()
    return 0
