"""`fnops run`: serve a function folder locally, as its image would, and restart it when
the folder changes.

python runtimes run the very server the image runs (runtimes/python/server.py) with this
installation's Python and uvicorn, the function's `env:` after its environment's overlay,
the variables given for this run (-e, --env-file), and the variables Knative sets
(K_SERVICE, PORT) — and of this shell's environment only what running Python needs
(`PASSED`), never its tokens. `envFrom` secrets and config maps live in the cluster and are
not read here.

`fnops run` holds the listening socket itself and hands it to each server it starts, so a
reload starts the new server beside the old one, waits until it says it is ready, and only
then stops the old: no connection is ever refused. A server that does not start (a syntax
error, a missing package) is reported in one line and the old one keeps serving; while no
server runs, the socket answers 503 with the reason (a request never hangs on a dead server).

node runtimes run the image's server (runtimes/node/server.js) with this machine's `node` the
same way, on the same socket handshake; the function's dependencies are what `npm ci` put in
its folder's node_modules.

`runtime: dockerfile` functions are built with buildah and run with `buildah run` (chroot
isolation shares this machine's network), which binds the port itself: the old container
keeps serving while the new image builds, and the switch has a short gap."""

from __future__ import annotations

import json
import os
import re
import select
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time

from ..delivery import runtimes
from ..errors import FnopsError, UsageError
from ..spec import load_function
from .state import Registration

WATCH_SKIP = {"releases", "__pycache__", ".git", ".fnops", ".venv", "node_modules"}
DEFAULT_PORT = 8080
START_TIMEOUT = 120.0  # seconds a server may take to load its handler


def snapshot(folder: str, extra: tuple = ()) -> dict:
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
    for p in extra:
        try:
            st = os.stat(p)
            out[p] = (st.st_mtime_ns, st.st_size)
        except OSError:
            out[p] = None
    return out


# What a handler gets of the shell that runs `fnops run`: enough to run Python, find files
# and format text, and nothing else. The shell's tokens and credentials (GITHUB_TOKEN, AWS_*,
# a registry password) are the developer's, not the function's; in the cluster it sees only
# its function.yaml `env:` too. It needs more? Put it in `env:`, an overlay, or -e for one run.
PASSED = frozenset({"PATH", "HOME", "USER", "LOGNAME", "LANG", "LANGUAGE", "TZ", "TMPDIR", "SSL_CERT_FILE",
                    "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "NODE_EXTRA_CA_CERTS"})
PASSED_PREFIXES = ("LC_", "PYTHON")
# Set by fnops run (and Knative) for the server: a variable for one run may not replace them.
RESERVED = frozenset({"PORT", "HOST", "K_SERVICE", "K_REVISION", "K_CONFIGURATION"})
VAR_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def environment(fn, port: int, host: str, variables: dict | None = None) -> dict:
    """The handler's environment: PASSED of this process's, the function's `env:` after its
    overlay, the variables for this run, and what Knative sets."""
    env = {k: v for k, v in os.environ.items() if k in PASSED or k.startswith(PASSED_PREFIXES)}
    env.update(dict(fn.env))
    env.update(variables or {})
    env.update({"PORT": str(port), "HOST": host, "FNOPS_HANDLER": fn.handler, "K_SERVICE": fn.name,
                "K_REVISION": f"{fn.name}-local", "K_CONFIGURATION": fn.name, "PYTHONUNBUFFERED": "1",
                "FNOPS_GRACEFUL_SECONDS": "1"})
    return env


def variable(text: str, where: str) -> tuple[str, str]:
    """NAME=VALUE -> (NAME, VALUE), or a one-line UsageError naming `where`."""
    name, eq, value = text.partition("=")
    if not eq or not VAR_NAME.fullmatch(name):
        raise UsageError(f"{where}: '{text[:60]}' is not NAME=VALUE (NAME: letters, digits and '_', not first a digit)")
    if name in RESERVED or name.startswith("FNOPS_"):
        raise UsageError(f"{where}: {name} is set by fnops run itself (--port, --host, the function's name)")
    return name, value


def read_env_file(path: str) -> dict:
    """A dotenv file: NAME=VALUE per line, `export ` allowed, # comments and blank lines
    skipped, a value in matching single quotes taken as written, in double quotes with \\n,
    \\t, \\" and \\\\ read as escapes."""
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        raise UsageError(f"--env-file {path}: no such file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise UsageError(f"--env-file {path}: cannot read it ({getattr(e, 'strerror', None) or e})") from None
    out = {}
    for n, line in enumerate(lines, 1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        if text.startswith("export "):
            text = text[len("export "):].lstrip()
        name, value = variable(text, f"{path}:{n}")
        name, value = name.strip(), value.strip()
        if len(value) >= 2 and value[0] == value[-1] == "'":
            value = value[1:-1]
        elif len(value) >= 2 and value[0] == value[-1] == '"':
            value = re.sub(r'\\([nt"\\])', lambda m: {"n": "\n", "t": "\t"}.get(m.group(1), m.group(1)), value[1:-1])
        out[name] = value
    return out


def check_environment(folder: str, env: str | None) -> None:
    """An overlay name must be one the function declares (an `environments:` key or a
    releases/<env>.yaml pin): a typo would otherwise run the base silently."""
    if env is None:
        return
    from .. import yamldoc
    from ..spec.function import environments_of

    doc = yamldoc.load(os.path.join(folder, "function.yaml"), root=folder)
    declared = environments_of(doc, folder)
    if env not in declared:
        known = f"it declares {', '.join(declared)}" if declared else \
            "it declares none (add one under `environments:` in function.yaml)"
        raise UsageError(f"--env {env}: {os.path.join(folder, 'function.yaml')} has no environment '{env}'; {known}")


def python_mismatch(fn) -> str | None:
    """A warning when this Python (or node) is not the one the image runs."""
    if fn.runtime.startswith("node"):
        return node_mismatch(fn)
    if not fn.runtime.startswith("python"):
        return None
    here = f"{sys.version_info.major}.{sys.version_info.minor}"
    wanted = fn.runtime[len("python"):]
    if wanted == here:
        return None
    return (f"{fn.folder}: runtime {fn.runtime}, but this Python is {here} ({sys.executable}); the image runs "
            f"{wanted}, so what differs between them behaves differently here (install fnops in a Python {wanted} "
            "environment to match)")


def _requirement_names(folder: str) -> set[str]:
    path = os.path.join(folder, "requirements.txt")
    names = set()
    try:
        with open(path, encoding="utf-8") as f:
            for line in f:
                m = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", line)
                if m and not line.lstrip().startswith(("#", "-")):
                    names.add(re.sub(r"[-_.]+", "-", m.group(1)).lower())
    except OSError:
        pass
    return names


def load_failure(fn, failure: dict) -> str:
    """One line for why the handler did not load, from what server.py reported."""
    kind, message = failure.get("type", "Error"), failure.get("message", "")
    file = failure.get("file")
    where = os.path.relpath(file) if file else os.path.join(fn.folder, "function.yaml")
    if failure.get("line"):
        where += f":{failure['line']}"
        if failure.get("col"):
            where += f":{failure['col']}"
    if kind == "ModuleNotFoundError" and failure.get("module") and fn.runtime.startswith("node"):
        return (f"{where}: requires '{failure['module']}', which is not in {os.path.join(fn.folder, 'node_modules')}; "
                f"add it to package.json (`npm install {failure['module']}` there) or, if it is listed, install the "
                f"lockfile's packages with `npm ci --prefix {shlex.quote(fn.folder)}`")
    if kind == "ModuleNotFoundError" and failure.get("module"):
        top = failure["module"].split(".")[0]
        req = os.path.join(fn.folder, "requirements.txt")
        install = f"{shlex.quote(sys.executable)} -m pip install -r {shlex.quote(req)}"
        if re.sub(r"[-_.]+", "-", top).lower() in _requirement_names(fn.folder):
            hint = f"it is in {req}: install the function's requirements into this Python with `{install}`"
        else:
            hint = f"add the package that provides it to {req}, then `{install}`"
        return f"{where}: imports '{top}', which is not installed in the Python fnops runs ({sys.executable}); {hint}"
    if kind == "LookupError":
        return f"{os.path.join(fn.folder, 'function.yaml')}: handler {fn.handler}: {message}"
    return f"{where}: {kind}: {message}"


# uvicorn's own start and stop lines: the local loop says what matters in its own words.
_CHATTER = re.compile(r"^INFO:?\s+(Started server process|Waiting for application|Application (startup|shutdown) "
                      r"complete|Shutting down|Finished server process)")
_ACCESS = "INFO fnops.access: "


def _reason(why) -> str | None:
    return _one_line(why) if isinstance(why, FnopsError) else why


def _one_line(e: FnopsError) -> str:
    """The last line of an error (a build error's own tail comes before it)."""
    lines = e.format().splitlines() or [str(e)]
    return lines[-1].removeprefix("fnops: ")


class Relay(threading.Thread):
    """A server's stderr: kept back until it is ready (a failed start is reported in one
    line instead), then passed on, request lines without their logger prefix."""

    def __init__(self, stream, out=None):
        super().__init__(daemon=True)
        self.stream, self.out = stream, out or sys.stderr
        self.held: list[str] = []
        self.live = False
        self.lock = threading.Lock()

    def run(self) -> None:
        for raw in iter(self.stream.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip("\n")
            if _CHATTER.match(line):
                continue
            if line.startswith(_ACCESS):
                line = line[len(_ACCESS):]
            with self.lock:
                if self.live:
                    self._write(line)
                else:
                    self.held.append(line)
        self.stream.close()

    def _write(self, line: str) -> None:
        try:
            self.out.write(line + "\n")
            self.out.flush()
        except (OSError, ValueError):
            pass

    def go_live(self) -> None:
        with self.lock:
            self.live = True
            for line in self.held:
                self._write(line)
            self.held = []

    def tail(self, n: int = 3) -> str:
        with self.lock:
            lines = [x.strip() for x in self.held if x.strip()][-n:]
        return " | ".join(lines) or "no output"


class Child:
    """One server process."""

    def __init__(self, proc: subprocess.Popen, relay: Relay | None, ready_fd: int | None = None, port=None,
                 host=None):
        self.proc, self.relay, self.ready_fd, self.port, self.host = proc, relay, ready_fd, port, host

    def wait_ready(self, stopping, timeout: float = START_TIMEOUT) -> str | dict | None:
        """None once it serves; else why not (a load failure from server.py, or text)."""
        deadline = time.monotonic() + timeout
        if self.ready_fd is None:
            return self._wait_port(stopping, deadline)
        buf = b""
        try:
            while time.monotonic() < deadline and not stopping:
                readable, _, _ = select.select([self.ready_fd], [], [], 0.1)
                if not readable:
                    continue
                chunk = os.read(self.ready_fd, 65536)
                if not chunk:
                    break  # the server went without a word
                buf += chunk
                if buf.endswith(b"\n"):
                    break
        finally:
            os.close(self.ready_fd)
            self.ready_fd = None
        text = buf.decode("utf-8", "replace").strip()
        if text == "ready":
            return None
        if text.startswith("{"):
            try:
                return json.loads(text)["error"]
            except (ValueError, KeyError, TypeError):
                pass
        if stopping:
            return "stopped"
        if time.monotonic() >= deadline:
            return f"it did not start within {int(timeout)} s"
        return self.exit_reason()

    def _wait_port(self, stopping, deadline) -> str | None:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        while time.monotonic() < deadline and not stopping:
            if self.proc.poll() is not None:
                return self.exit_reason()
            try:
                socket.create_connection((host, self.port), timeout=0.5).close()
                return None
            except OSError:
                time.sleep(0.1)
        return "stopped" if stopping else f"it did not listen on port {self.port} in time"

    def exit_reason(self) -> str:
        try:
            code = self.proc.wait(5)
        except subprocess.TimeoutExpired:
            code = None
        if self.relay is not None:
            self.relay.join(1)
        tail = self.relay.tail() if self.relay is not None else "no output"
        return f"the server exited ({'code ' + str(code) if code is not None else 'still running'}): {tail}"

    def running(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.ready_fd is not None:
            os.close(self.ready_fd)
            self.ready_fd = None


class PythonServer:
    """python3.x: server.py with this Python, on the socket `fnops run` holds."""

    overlap = True  # a new server starts beside the old one on the same socket

    def __init__(self, listener: socket.socket, host: str, port: int, variables: dict):
        self.listener, self.host, self.port, self.variables = listener, host, port, variables

    def prepare(self, fn) -> None:
        pass

    def command(self) -> list[str]:
        return [sys.executable, os.path.join(runtimes.HERE, "python", "server.py")]

    def start(self, fn) -> Child:
        command = self.command()
        r, w = os.pipe()
        env = environment(fn, self.port, self.host, self.variables)
        env.update({"FNOPS_LISTEN_FD": str(self.listener.fileno()), "FNOPS_READY_FD": str(w), "FNOPS_ACCESS_LOG": "1"})
        try:
            proc = subprocess.Popen(command, cwd=fn.folder, env=env, stdin=subprocess.DEVNULL,
                                    stderr=subprocess.PIPE, pass_fds=(self.listener.fileno(), w))
        except BaseException:
            os.close(r)
            raise
        finally:
            os.close(w)
        relay = Relay(proc.stderr)
        relay.start()
        return Child(proc, relay, r)

    def close(self) -> None:
        pass


def node_executable() -> str:
    import shutil

    node = shutil.which("node")
    if node is None:
        raise UsageError("the node runtimes run with this machine's Node.js, and `node` is not on PATH "
                         "(install Node.js, https://nodejs.org)")
    return node


def node_mismatch(fn) -> str | None:
    """A warning when this machine's node is not the major version the image runs."""
    p = subprocess.run([node_executable(), "--version"], capture_output=True, text=True)
    here = p.stdout.strip().lstrip("v").split(".")[0]
    wanted = fn.runtime[len("node"):]
    if here == wanted:
        return None
    return (f"{fn.folder}: runtime {fn.runtime}, but this node is {p.stdout.strip() or 'unknown'}; the image runs "
            f"Node.js {wanted}, so what differs between them behaves differently here")


class NodeServer(PythonServer):
    """nodeNN: server.js with this machine's node, on the socket `fnops run` holds."""

    def command(self) -> list[str]:
        return [node_executable(), os.path.join(runtimes.HERE, "node", "server.js")]


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
    under `buildah run` (which binds the port itself)."""

    overlap = False  # the container binds the port: the old one must go first

    def __init__(self, host: str, port: int, variables: dict):
        from ..delivery.build import Buildah

        self.host, self.port, self.variables = host, port, variables
        self.builder = Buildah()  # says how to install buildah when it is missing
        self.env = self.builder.env
        self.container = None
        self.ref = None

    def _buildah(self, *args: str) -> str:
        p = subprocess.run([*self.builder.exe, *args], env=self.env, capture_output=True, text=True)
        if p.returncode != 0:
            tail = " | ".join(p.stderr.strip().splitlines()[-3:])
            raise FnopsError(f"buildah {args[0]} failed: {tail}")
        return p.stdout.strip()

    def prepare(self, fn) -> None:
        """Build the image: slow, and done while the previous container still serves."""
        import shutil

        ctx, dockerfile = runtimes.build_context(fn)
        self.ref = f"localhost/fnops-run/{fn.name}:dev"
        try:
            self.builder.build(ctx, dockerfile, self.ref, tls_verify=not _loopback_bases(dockerfile))
        finally:
            shutil.rmtree(ctx, ignore_errors=True)

    def start(self, fn) -> Child:
        self.close()
        self.container = self._buildah("from", "--pull-never", self.ref)
        config = json.loads(self._buildah("inspect", "--type", "container", self.container))
        image = config.get("OCIv1", {}).get("config", {})
        command = (image.get("Entrypoint") or []) + (image.get("Cmd") or [])
        if not command:
            raise UsageError(f"{fn.folder}/Dockerfile: the image has no CMD or ENTRYPOINT to run")
        envs = []
        for k, v in environment(fn, self.port, self.host, self.variables).items():
            if k in dict(fn.env) or k in self.variables or k in RESERVED:
                envs += ["--env", f"{k}={v}"]
        proc = subprocess.Popen([*self.builder.exe, "run", *envs, self.container, "--", *command], env=self.env,
                                stdin=subprocess.DEVNULL, stderr=subprocess.PIPE)
        relay = Relay(proc.stderr)
        relay.start()
        relay.go_live()  # a container's own output is the user's to read
        return Child(proc, relay, None, self.port, self.host)

    def close(self) -> None:
        if self.container:
            subprocess.run([*self.builder.exe, "rm", self.container], env=self.env, capture_output=True)
            self.container = None


class Unavailable(threading.Thread):
    """While no server runs, every connection to the socket gets a 503 that says why, so a
    client is told instead of left waiting on a queue nobody reads."""

    def __init__(self, listener: socket.socket, name: str, reason: str):
        super().__init__(daemon=True)
        self.listener = listener
        body = json.dumps({"error": f"{name} is not running: {reason}",
                           "hint": "fnops run restarts it when the folder changes"}).encode()
        self.reply = (b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n"
                      b"connection: close\r\ncontent-length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.is_set():
            readable, _, _ = select.select([self.listener], [], [], 0.1)
            if not readable or self.halt.is_set():
                continue
            try:
                conn, _ = self.listener.accept()
            except (BlockingIOError, InterruptedError, OSError):
                continue
            try:
                conn.settimeout(1)
                seen = b""
                while b"\r\n\r\n" not in seen and len(seen) < 65536:
                    chunk = conn.recv(4096)
                    if not chunk:
                        break
                    seen += chunk
                conn.sendall(self.reply)
            except OSError:
                pass
            finally:
                conn.close()

    def stop(self) -> None:
        self.halt.set()
        self.join(2)


def bind(host: str, port: int | None, say) -> socket.socket:
    """The listening socket: --port if given (busy: an error), else 8080, else a free one."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET

    def attempt(p):
        s = socket.socket(family, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # not kept out by TIME_WAIT; never shares a listener
        try:
            s.bind((host, p))
        except OSError:
            s.close()
            raise
        s.listen(128)
        s.setblocking(False)
        s.set_inheritable(True)
        return s

    try:
        return attempt(DEFAULT_PORT if port is None else port)
    except OSError as e:
        busy = e.errno in (98, 48)  # EADDRINUSE (Linux, macOS)
        if port is not None or not busy:
            what = "is in use (another program listens there)" if busy else f"cannot be bound: {e.strerror}"
            raise FnopsError(f"{host}:{port if port is not None else DEFAULT_PORT} {what}; pass another --port, "
                             "or --port 0 for a free one") from None
    s = attempt(0)
    say(f"port {DEFAULT_PORT} is in use (another program listens there); using {s.getsockname()[1]} instead")
    return s


def free_port_check(host: str, port: int | None, say) -> int:
    """For servers that bind the port themselves: the port, checked free now."""
    s = bind(host, port, say)
    p = s.getsockname()[1]
    s.close()
    return p


class Loop:
    def __init__(self, folder, env, port, host, reload, say, interval, variables, env_file):
        self.folder, self.env, self.host, self.reload = folder, env, host, reload
        self.say, self.interval, self.cli_variables, self.env_file = say, interval, variables, env_file
        self.requested_port = port
        self.stopping: list = []
        self.unavailable: Unavailable | None = None
        self.listener: socket.socket | None = None

    def variables(self) -> dict:
        out = read_env_file(self.env_file) if self.env_file else {}
        out.update(self.cli_variables)
        return out

    def load(self):
        fn = load_function(self.folder, self.env)
        if fn.runtime == "image":
            raise UsageError(f"{self.folder}: runtime 'image' is built elsewhere; run that image instead")
        return fn

    def down(self, name: str, reason: str) -> None:
        """No server: say so in the state file and on the socket."""
        self.registration.update(state="down", reason=reason)
        if self.listener is not None and self.unavailable is None:
            self.unavailable = Unavailable(self.listener, name, reason)
            self.unavailable.start()

    def up(self) -> None:
        if self.unavailable is not None:
            self.unavailable.stop()
            self.unavailable = None

    def launch(self, runner, fn, built: bool = False) -> tuple[Child | None, str | None]:
        """Start a server for `fn`; -> (child, None) once it serves, or (None, why not)."""
        try:
            if not built:
                runner.prepare(fn)
            child = runner.start(fn)
        except FnopsError as e:
            return None, e  # the folder's own problem (a build, a link out of it): its own exit code
        why = child.wait_ready(self.stopping)
        if why is None:
            if child.relay is not None:
                child.relay.go_live()
            return child, None
        child.stop()
        return None, load_failure(fn, why) if isinstance(why, dict) else why

    def serve(self) -> int:
        fn = self.load()
        check_environment(self.folder, self.env)
        warning = python_mismatch(fn)
        if warning:
            self.say(f"warning: {warning}")
        variables = self.variables()
        if fn.runtime == "dockerfile":
            port = free_port_check(self.host, self.requested_port, self.say)
            runner = BuildahServer(self.host, port, variables)
        else:
            self.listener = bind(self.host, self.requested_port, self.say)
            port = self.listener.getsockname()[1]
            server = NodeServer if fn.runtime.startswith("node") else PythonServer
            runner = server(self.listener, self.host, port, variables)
        self.registration = Registration(fn.name, self.folder, self.env, self.host)
        self.registration.update(port=port)
        url = self.registration.data["url"]
        previous = {sig: signal.signal(sig, lambda *_: self.stopping.append(True)) for sig in (signal.SIGTERM,)}
        child = None
        try:
            child, why = self.launch(runner, fn)
            label = f"{fn.name} [{self.env or 'no environment'}]"
            if child is None:
                if isinstance(why, FnopsError) and not self.reload:
                    raise why
                why = _reason(why)
                self.say(f"{fn.name} did not start: {why}")
                if not self.reload or self.stopping:
                    return 1
                self.say(f"waiting for a change to {self.folder} to try again; {url} answers 503 until then "
                         "(ctrl-c to stop)")
                self.down(fn.name, why)
            else:
                self.registration.update(state="serving", reason=None)
                self.say(f"serving {label} on {url} (ctrl-c to stop)")
            seen = snapshot(self.folder, (self.env_file,) if self.env_file else ())
            while not self.stopping:
                time.sleep(self.interval)
                if child is not None and not child.running():
                    why = child.exit_reason()
                    child = None
                    if not self.reload:
                        self.say(f"{fn.name} stopped: {why}")
                        return 1
                    self.say(f"{fn.name} stopped: {why}")
                    self.say(f"waiting for a change to {self.folder} to restart it; {url} answers 503 until then")
                    self.down(fn.name, why)
                if not self.reload:
                    continue
                now = snapshot(self.folder, (self.env_file,) if self.env_file else ())
                if now == seen:
                    continue
                seen = now
                child, fn = self.reload_once(runner, child, fn)
        except KeyboardInterrupt:
            pass
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            self.up()
            if child is not None:
                child.stop()
            runner.close()
            self.registration.remove()
            if self.listener is not None:
                self.listener.close()
        return 0

    def reload_once(self, runner, old: Child | None, fn):
        """A change: the new server starts (beside the old one where it can) and replaces
        it only once it answers; -> (the child serving now, the function it serves)."""
        started = time.monotonic()
        try:
            new_fn = self.load()
            runner.variables = self.variables()
        except FnopsError as e:  # a half-saved file: say so, keep what serves
            self.say(e.format())
            self.say("still serving the previous version" if old is not None else "still waiting for a change")
            return old, fn
        if _server_kind(new_fn.runtime) != _server_kind(fn.runtime):
            self.say(f"runtime changed from {fn.runtime} to {new_fn.runtime}: restart fnops run to serve it"
                     + ("; still serving the previous version" if old is not None else ""))
            return old, fn
        if old is not None and not runner.overlap:
            try:
                runner.prepare(new_fn)  # the build, while the old container serves
            except FnopsError as e:
                self.say(f"reload failed, still serving the previous version: {_one_line(e)}")
                return old, fn
            old.stop()
            child, why = self.launch(runner, new_fn, built=True)
        else:
            self.up()
            child, why = self.launch(runner, new_fn)
        why = _reason(why)
        if child is None:
            if old is not None and old.running():
                self.say(f"reload failed, still serving the previous version: {why}")
                return old, fn
            self.say(f"{new_fn.name} did not start: {why}")
            self.say(f"waiting for a change to {self.folder} to try again")
            self.down(new_fn.name, why)
            return None, new_fn
        if old is not None:
            old.stop()
        self.registration.update(state="serving", reason=None)
        self.say(f"reloaded {new_fn.name} in {time.monotonic() - started:.2f} s")
        return child, new_fn


def _server_kind(runtime: str) -> str:
    """What serves a runtime: a reload cannot switch between these."""
    return "dockerfile" if runtime == "dockerfile" else "node" if runtime.startswith("node") else "python"


def serve(folder: str, env: str | None, port: int | None = None, host: str = "127.0.0.1", reload: bool = True,
          say=print, interval: float = 0.25, variables: dict | None = None, env_file: str | None = None) -> int:
    """Run until interrupted; restart whenever the folder (or the --env-file) changes."""
    return Loop(folder, env, port, host, reload, say, interval, dict(variables or {}), env_file).serve()
