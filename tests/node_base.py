"""A Node.js base image built from scratch for tests — never pulled: busybox, this machine's
`node` binary and the shared libraries ldd names for it; `-npm` adds this machine's npm (pure
JavaScript) on top, as `node:<major>-slim` has it. The host's node is what the image runs, so
its major version is the runtime the tests use (`node<major>`)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile

from containers import BUILDAH_ENV, Registry, _libs


def node_binary() -> str | None:
    node = shutil.which("node")
    return os.path.realpath(node) if node else None


def npm_root() -> str | None:
    """The folder of this machine's npm package (…/node_modules/npm), if there is one."""
    npm = shutil.which("npm")
    if not npm:
        return None
    root = os.path.dirname(os.path.dirname(os.path.realpath(npm)))
    return root if os.path.isfile(os.path.join(root, "package.json")) else None


def missing() -> str | None:
    from containers import have_tools

    why = [w for w in (have_tools(),) if w]
    if node_binary() is None:
        why.append("node")
    if npm_root() is None:
        why.append("npm")
    return ", ".join(why) or None


def node_major() -> str:
    out = subprocess.run([node_binary(), "--version"], capture_output=True, text=True, check=True).stdout
    return out.strip().lstrip("v").split(".")[0]


def _buildah(*args, env):
    return subprocess.run(["buildah", *args], env=env, capture_output=True, text=True, check=True).stdout.strip()


def _commit_and_push(c: str, ref: str, env) -> None:
    try:
        _buildah("config", "--env", "PATH=/usr/local/bin:/usr/bin:/bin", "--env", "LANG=C.UTF-8", c, env=env)
        _buildah("commit", "--quiet", c, ref, env=env)
    finally:
        subprocess.run(["buildah", "rm", c], env=env, capture_output=True)
    _buildah("push", "--quiet", "--tls-verify=false", ref, f"docker://{ref}", env=env)


def build_node_bases(registry: Registry, name: str = "base/node") -> tuple[str, str]:
    """-> (node only, node + npm), both pushed to `registry`."""
    env = {**os.environ, **BUILDAH_ENV}
    node = node_binary()
    rootfs = tempfile.mkdtemp(prefix="fnops-node-base-")
    try:
        busybox = shutil.which("busybox") or "/bin/busybox"
        os.makedirs(f"{rootfs}/bin")
        shutil.copy(busybox, f"{rootfs}/bin/busybox")
        for applet in ("sh", "env", "mkdir", "rm", "cp", "ls", "cat", "echo", "id", "sleep", "grep"):
            os.symlink("busybox", f"{rootfs}/bin/{applet}")
        os.makedirs(f"{rootfs}/usr/bin")
        os.symlink("/bin/busybox", f"{rootfs}/usr/bin/env")  # npm's `#!/usr/bin/env node`
        shutil.copy(node, f"{rootfs}/usr/bin/node")
        for lib in _libs([node]):
            dst = rootfs + lib
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            shutil.copy(lib, dst)
        for d in ("tmp", "app", "etc"):
            os.makedirs(f"{rootfs}/{d}", exist_ok=True)
        os.chmod(f"{rootfs}/tmp", 0o1777)
        with open(f"{rootfs}/etc/passwd", "w") as f:
            f.write("root:x:0:0:root:/root:/bin/sh\nnonroot:x:65532:65532::/app:/bin/sh\n")
        major = node_major()
        plain = f"{registry.host}/{name}:{major}"
        c = _buildah("from", "scratch", env=env)
        _buildah("copy", c, rootfs, "/", env=env)
        _commit_and_push(c, plain, env)
    finally:
        shutil.rmtree(rootfs, ignore_errors=True)
    with_npm = f"{registry.host}/{name}:{major}-npm"
    c = _buildah("from", "--pull-never", plain, env=env)
    _buildah("copy", c, npm_root(), "/usr/lib/node_modules/npm", env=env)
    _buildah("run", c, "--", "/bin/sh", "-c",
             "ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/bin/npm", env=env)
    _commit_and_push(c, with_npm, env)
    return plain, with_npm
