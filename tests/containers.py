"""Real container plumbing for tests: a docker-registry on 127.0.0.1 and a Python base
image built from scratch (busybox + this machine's Debian python3.11) — never pulled from
the internet."""

from __future__ import annotations

import contextlib
import glob
import os
import random
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request

BUILDAH_ENV = {"STORAGE_DRIVER": "vfs", "BUILDAH_ISOLATION": "chroot"}


def have_tools() -> str | None:
    """None if everything is here, else what is missing."""
    missing = [t for t in ("buildah", "docker-registry", "skopeo") if not shutil.which(t)]
    if not os.path.exists("/usr/bin/python3.11"):
        missing.append("/usr/bin/python3.11")
    if not (shutil.which("busybox") or os.path.exists("/bin/busybox")):
        missing.append("busybox")
    return ", ".join(missing) or None


def free_port() -> int:
    """A port for a server a test starts a moment later. Taken below the kernel's ephemeral
    range: a port the kernel handed out (bind to 0) can be handed out again, as the source
    port of any outgoing connection, before the server binds it — and a test flooding the
    bridge opens a thousand of those."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    first = 10000 if low > 12000 else 1024
    for _ in range(200):
        port = random.randrange(first, max(first + 1, low))
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Registry:
    def __init__(self, root: str):
        self.root = root
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        cfg = os.path.join(root, "config.yml")
        with open(cfg, "w") as f:
            f.write(f"version: 0.1\nlog: {{level: warn}}\nstorage:\n  filesystem: {{rootdirectory: {root}/data}}\n"
                    f"  delete: {{enabled: true}}\nhttp:\n  addr: {self.host}\n")
        self.log = open(os.path.join(root, "registry.log"), "w")
        self.proc = subprocess.Popen(["docker-registry", "serve", cfg], stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"http://{self.host}/v2/", timeout=1).close()
                return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("docker-registry did not start")

    def manifest_digest(self, repo_path: str, tag: str) -> str:
        req = urllib.request.Request(f"http://{self.host}/v2/{repo_path}/manifests/{tag}", method="HEAD", headers={
            "Accept": "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json, "
                      "application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json"})
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.headers["Docker-Content-Digest"]

    def tags(self, repo_path: str) -> list[str]:
        import json

        try:
            with urllib.request.urlopen(f"http://{self.host}/v2/{repo_path}/tags/list", timeout=5) as r:
                return sorted(json.load(r).get("tags") or [])
        except urllib.error.HTTPError as e:
            if e.code == 404:
                return []
            raise

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def _libs(paths) -> set[str]:
    out = set()
    for p in paths:
        r = subprocess.run(["ldd", p], capture_output=True, text=True)
        for line in r.stdout.splitlines():
            parts = line.split("=>")
            target = (parts[1] if len(parts) > 1 else parts[0]).strip().split(" (")[0].strip()
            if target.startswith("/"):
                out.add(target)
    return out


def build_python_base(registry: Registry, name: str = "base/python", with_pip: bool = False) -> str:
    """A minimal image with /bin/sh (busybox) and python3.11 + stdlib; pushed to `registry`.
    `with_pip`: plus this environment's pip (pure Python), for functions with requirements."""
    env = {**os.environ, **BUILDAH_ENV}
    rootfs = tempfile.mkdtemp(prefix="fnops-base-")
    try:
        busybox = shutil.which("busybox") or "/bin/busybox"
        os.makedirs(f"{rootfs}/bin")
        shutil.copy(busybox, f"{rootfs}/bin/busybox")
        for applet in ("sh", "grep", "ls", "cat", "env", "mkdir", "rm", "cp", "echo", "id", "sleep"):
            os.symlink("busybox", f"{rootfs}/bin/{applet}")
        os.makedirs(f"{rootfs}/usr/bin")
        shutil.copy("/usr/bin/python3.11", f"{rootfs}/usr/bin/python3.11")
        os.symlink("python3.11", f"{rootfs}/usr/bin/python")
        os.symlink("python3.11", f"{rootfs}/usr/bin/python3")
        shutil.copytree("/usr/lib/python3.11", f"{rootfs}/usr/lib/python3.11", symlinks=True,
                        ignore=shutil.ignore_patterns("__pycache__", "test", "tests", "idlelib", "tkinter",
                                                      "ensurepip", "dist-packages"))
        dynload = glob.glob("/usr/lib/python3.11/lib-dynload/*.so")
        for lib in _libs(["/usr/bin/python3.11", *dynload]):
            dst = rootfs + lib
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            shutil.copy(lib, dst)
        if with_pip:
            import pip

            shutil.copytree(os.path.dirname(pip.__file__), f"{rootfs}/usr/lib/python3/dist-packages/pip",
                            ignore=shutil.ignore_patterns("__pycache__"))
        for d in ("tmp", "app", "etc"):
            os.makedirs(f"{rootfs}/{d}", exist_ok=True)
        with open(f"{rootfs}/etc/passwd", "w") as f:
            f.write("root:x:0:0:root:/root:/bin/sh\nnonroot:x:65532:65532::/app:/bin/sh\n")
        ref = f"{registry.host}/{name}:3.11"
        c = subprocess.run(["buildah", "from", "scratch"], env=env, capture_output=True, text=True, check=True).stdout.strip()
        try:
            subprocess.run(["buildah", "copy", c, rootfs, "/"], env=env, check=True, capture_output=True)
            subprocess.run(["buildah", "config", "--env", "PATH=/usr/bin:/bin", "--env", "LANG=C.UTF-8", c],
                           env=env, check=True, capture_output=True)
            subprocess.run(["buildah", "commit", "--quiet", c, ref], env=env, check=True, capture_output=True)
        finally:
            subprocess.run(["buildah", "rm", c], env=env, capture_output=True)
        subprocess.run(["buildah", "push", "--quiet", "--tls-verify=false", ref, f"docker://{ref}"], env=env,
                       check=True, capture_output=True)
        return ref
    finally:
        shutil.rmtree(rootfs, ignore_errors=True)


@contextlib.contextmanager
def registry_with_base(root: str, name: str = "base/python", with_pip: bool = False):
    """(registry, base image ref) for a test module; the registry stops afterwards."""
    reg = Registry(root)
    try:
        yield reg, build_python_base(reg, name, with_pip)
    finally:
        reg.stop()
