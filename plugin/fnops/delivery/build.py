"""Image builders: buildah (no daemon; chroot isolation, vfs storage by default) and
docker buildx. Each builds a context, pushes one tag and returns the pushed digest.

Builds are reproducible: every timestamp in the image (config, history, file times, the
bytecode pip writes) is the time of the last commit that changed the function's folder, so
the same folder content on the same base gives the same digest at any later commit and a
re-run pins nothing new. A dry run never pushes, with either builder.

Registries on loopback (127.0.0.0/8, localhost, [::1]) are plain HTTP, as Docker treats
them; every other registry is TLS. Registry credentials come from the usual auth files
(`docker login` / `buildah login` / docker/login-action), never from fnops flags.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile

from ..errors import PermanentError, TemporaryError, UsageError
from ..types import Digest

_LOOPBACK = re.compile(r"^(localhost|127(?:\.\d{1,3}){3}|\[::1\])(:\d+)?$")


def is_loopback(ref: str) -> bool:
    host = ref.split("/", 1)[0]
    return bool(_LOOPBACK.match(host))


def extra_refs(ref: str, tags) -> list[str]:
    """`ref` (repository:tag) under each of the extra tags."""
    repository = ref.rsplit(":", 1)[0]
    return [f"{repository}:{t}" for t in tags if f"{repository}:{t}" != ref]


class BuildError(PermanentError):
    """A build failed; `log` holds the builder's own output, `tail` its last lines."""

    TAIL_LINES = 40

    def __init__(self, message: str, log: str = ""):
        super().__init__(message)
        self.log = log or ""

    @property
    def tail(self) -> list[str]:
        return [line for line in self.log.rstrip().splitlines() if line.strip()][-self.TAIL_LINES:]

    def format(self) -> str:
        """The build's own last lines (pip's error is there), then the one-line error. In
        GitHub Actions the whole log was streamed as it came (`_run_builder`); the tail and the
        error (which quotes the log's last line) go between stop-commands, so nothing a build
        prints is read as a workflow command."""
        out = [f"  | {line}" for line in self.tail] + [super().format()]
        if os.environ.get("GITHUB_ACTIONS") == "true":
            from ..escape import untrusted_lines

            out = untrusted_lines(out)
        return "\n".join(out)


# In GitHub Actions, every builder's output is streamed (a 30-minute build is not silent),
# inside one stop-commands region shared by the builds running at once.
_STREAM = None


def _label(ref: str) -> str:
    """The function's name in a streamed log line: the last path part of the image, no tag."""
    return ref.rsplit("/", 1)[-1].split(":", 1)[0]


def _run_builder(args, env, label: str) -> tuple[int, str]:
    """Run a builder with stderr into stdout; -> (exit code, its whole output). In GitHub
    Actions each line is shown as it comes, prefixed with `label`; elsewhere it is kept for
    the tail a failure shows."""
    global _STREAM
    if os.environ.get("GITHUB_ACTIONS") != "true":
        p = subprocess.run(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           errors="replace")
        return p.returncode, p.stdout
    from ..escape import UntrustedStream

    if _STREAM is None:
        _STREAM = UntrustedStream("fnops: builder output (untrusted: workflow commands are off)")
    lines = []
    with _STREAM as log, subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                          text=True, errors="replace") as proc:
        for line in proc.stdout:
            lines.append(line)
            log.write(f"{label} | {line}")
    return proc.returncode, "".join(lines)


def _tail(text: str, n: int = 1) -> str:
    lines = [line for line in (text or "").strip().splitlines() if line.strip()]
    return " | ".join(lines[-n:]) if lines else "no output"


def _push_error(tool: str, ref: str, stderr: str):
    low = stderr.lower()
    if "unauthorized" in low or "authentication required" in low or "denied" in low:
        return PermanentError(f"push of {ref} refused: not authorized (log in to the registry first)")
    if "connection refused" in low or "no such host" in low or "timeout" in low or "i/o timeout" in low:
        return TemporaryError(f"push of {ref} failed: registry unreachable ({_tail(stderr)})")
    return PermanentError(f"push of {ref} failed: {_tail(stderr)}")


def build_flags(builder, target: str | None) -> list[str]:
    """The flags buildah bud and docker buildx build spell alike: labels, annotations,
    secrets, SSH agents, target stage, no-cache."""
    args = []
    for label in builder.labels:
        args += ["--label", label]
    for annotation in builder.annotations:
        args += ["--annotation", annotation]
    # Secrets and SSH agents are mounted into RUN steps only; they never reach a layer.
    for secret in builder.secrets:
        args += ["--secret", secret]
    for agent in builder.ssh:
        args += ["--ssh", agent]
    if target:
        args += ["--target", target]
    if builder.no_cache:
        args.append("--no-cache")
    return args


class Buildah:
    """`platforms` (more than the host's) build a manifest list pushed with every image;
    building for another architecture needs qemu-user-static registered with binfmt."""

    name = "buildah"

    def __init__(self, *, platforms=(), labels=(), annotations=(), tags=(), secrets=(), ssh=(), no_cache=False):
        if not shutil.which("buildah"):
            raise UsageError("builder 'buildah' is not installed (apt-get install buildah)")
        self.platforms, self.labels = tuple(platforms), tuple(labels)
        self.annotations, self.tags, self.secrets, self.ssh = tuple(annotations), tuple(tags), tuple(secrets), tuple(ssh)
        self.no_cache = no_cache
        self._ids: dict = {}
        self._pushed: dict = {}
        self.env = dict(os.environ)
        self.env.setdefault("BUILDAH_ISOLATION", "chroot")
        # The storage driver decides the order of entries in a layer (overlay's native diff
        # walks the tree, vfs sorts paths), hence the digest: every runner must use the same
        # one. buildah reads no STORAGE_DRIVER variable, so it goes on the command line.
        self.exe = ["buildah", "--storage-driver", self.env.get("STORAGE_DRIVER") or "vfs"]

    def command(self, ctx: str, dockerfile: str, ref: str, *, build_args=(), tls_verify=True,
                timestamp: int | None = None, target: str | None = None, iidfile: str | None = None) -> list[str]:
        # --identity-label=false: the buildah version is not part of the image, so runners
        # with different buildah releases still agree on the digest. No --layers with a
        # timestamp: buildah's layer cache ignores --timestamp, so a cached layer from
        # another commit's build would make the digest depend on the runner's cache.
        dest = ["--platform", ",".join(self.platforms), "--manifest", ref] if self.platforms else ["-t", ref]
        args = [*self.exe, "bud", "--identity-label=false", "-f", dockerfile, *dest]
        args += build_flags(self, target)
        if iidfile:
            args += ["--iidfile", iidfile]
        if timestamp is not None:
            # --timestamp fixes file times and the config; the build arg reaches RUN steps
            # (pip's bytecode), as buildx does with SOURCE_DATE_EPOCH in its environment.
            args += [f"--timestamp={timestamp}", "--build-arg", f"SOURCE_DATE_EPOCH={timestamp}"]
        else:
            args.append("--layers")
        if not tls_verify:
            args.append("--tls-verify=false")
        for a in build_args:
            args += ["--build-arg", a]
        return [*args, ctx]

    def build(self, ctx: str, dockerfile: str, ref: str, *, build_args=(), tls_verify=True, scope=None,
              timestamp: int | None = None, push: bool = True, target: str | None = None) -> None:
        """Build into local storage; `push` is for builders that push while building."""
        with tempfile.TemporaryDirectory(prefix="fnops-iid-") as d:
            iidfile = os.path.join(d, "iid")
            code, log = _run_builder(self.command(ctx, dockerfile, ref, build_args=build_args, tls_verify=tls_verify,
                                                  timestamp=timestamp, target=target, iidfile=iidfile),
                                     self.env, _label(ref))
            if code != 0:
                raise BuildError(f"build of {ref} failed: {_tail(log, 1)}", log)
            if os.path.exists(iidfile):
                with open(iidfile) as f:
                    iid = f.read().strip()
                self._ids[ref] = iid if iid.startswith("sha256:") else f"sha256:{iid}"

    def push_command(self, ref: str, digestfile: str, *, tls_verify=True) -> list[str]:
        args = ([*self.exe, "manifest", "push", "--all", "--quiet", "--digestfile", digestfile] if self.platforms
                else [*self.exe, "push", "--quiet", "--digestfile", digestfile])
        if not tls_verify:
            args.append("--tls-verify=false")
        return [*args, ref, f"docker://{ref}"]

    def push(self, ref: str, *, tls_verify=True) -> Digest:
        """Push `ref`, then the same image under each extra tag; -> the digest of `ref`."""
        digest = None
        for name in (ref, *extra_refs(ref, self.tags)):
            with tempfile.TemporaryDirectory(prefix="fnops-push-") as d:
                digestfile = os.path.join(d, "digest")
                args = self.push_command(ref, digestfile, tls_verify=tls_verify)
                args[-1] = f"docker://{name}"
                p = subprocess.run(args, env=self.env, capture_output=True, text=True)
                if p.returncode != 0:
                    raise _push_error("buildah", name, p.stderr)
                with open(digestfile) as f:
                    digest = digest or Digest(f.read().strip())
        self._pushed[ref] = digest
        return digest

    def metadata(self, ref: str) -> dict:
        """What build-push-action's `metadata` output holds, as far as buildah knows it."""
        out = {"image.name": ",".join((ref, *extra_refs(ref, self.tags)))}
        if ref in self._ids:
            out["containerimage.config.digest"] = self._ids[ref]
        if self._pushed.get(ref):
            out["containerimage.digest"] = str(self._pushed[ref])
        return out

    def remove(self, ref: str) -> None:
        if self.platforms:
            subprocess.run([*self.exe, "manifest", "rm", ref], env=self.env, capture_output=True)
        subprocess.run([*self.exe, "rmi", ref], env=self.env, capture_output=True)


class Docker:
    """docker buildx: builds and pushes in one step; the digest comes from --metadata-file."""

    name = "docker"

    def __init__(self, *, provenance: bool | str | None = None, sbom: bool = False, gha_cache: bool | None = None,
                 platforms=(), labels=(), cache_from=(), cache_to=(), instance: str | None = None,
                 default_provenance: str | None = None, annotations=(), tags=(), secrets=(), ssh=(),
                 no_cache: bool = False):
        if not shutil.which("docker"):
            raise UsageError("builder 'docker' is not installed")
        # provenance: True/False or buildx's attributes ("mode=max"), as asked; None: not asked,
        # then default_provenance where the builder can attach it (the action passes
        # build-push-action's default), else none.
        self.provenance, self.sbom, self.default_provenance = provenance, sbom, default_provenance
        self.annotations, self.tags, self.secrets, self.ssh = tuple(annotations), tuple(tags), tuple(secrets), tuple(ssh)
        self.no_cache = no_cache
        self._metadata: dict = {}
        self.platforms, self.labels, self.instance = tuple(platforms), tuple(labels), instance
        self.cache_from, self.cache_to = tuple(cache_from), tuple(cache_to)
        # The action exposes the cache service (ACTIONS_CACHE_URL / ACTIONS_RESULTS_URL) and sets
        # FNOPS_GHA_CACHE=1 when its `gha-cache` input asks; `run:` steps see neither otherwise.
        self.gha_cache = (os.environ.get("FNOPS_GHA_CACHE") == "1" and bool(
            os.environ.get("ACTIONS_CACHE_URL") or os.environ.get("ACTIONS_RESULTS_URL"))) if gha_cache is None \
            else gha_cache
        self._digests: dict = {}
        self._driver: str | None = None

    def driver(self) -> str:
        """The buildx driver of the builder in use (`docker`, `docker-container`, …), or ''."""
        if self._driver is None:
            args = ["docker", "buildx", "inspect", *(["--builder", self.instance] if self.instance else [])]
            p = subprocess.run(args, capture_output=True, text=True)
            found = [line.split(":", 1)[1].strip() for line in p.stdout.splitlines()
                     if line.strip().lower().startswith("driver:")]
            self._driver = found[0] if p.returncode == 0 and found else ""
        return self._driver

    def provenance_flag(self) -> str:
        """--provenance=… as asked, else the default where the driver can attach one."""
        value = self.provenance
        if value is None:
            value = self.default_provenance if self.default_provenance and self.driver() != "docker" else False
        return "true" if value is True else "false" if value is False else str(value)

    def reproducibility_warning(self) -> str | None:
        """The default `docker` driver ignores rewrite-timestamp (and cannot export some
        attestations): its digests change from build to build, so say so instead of
        promising the same digest. A provenance attestation records its own build (times,
        invocation), so the index fnops pins changes with every build too."""
        if self.driver() == "docker":
            return ("docker buildx uses the 'docker' driver, which ignores rewrite-timestamp: these images are not "
                    "reproducible (the same folder gives a new digest each build). Use a docker-container builder "
                    "(docker/setup-buildx-action, or --buildx-builder NAME) or --builder buildah")
        if self.provenance_flag() != "false":
            return ("a provenance attestation records each build (its time and invocation), so the digest fnops pins "
                    "(the image index) differs from build to build although the image in it is the same; "
                    "--provenance false (the action's `provenance: false`) for digests that repeat")
        return None

    def check_driver(self) -> None:
        """Refuse, before anything is built, what the default `docker` driver cannot do (buildx
        would fail each build with "… is not supported for the docker driver")."""
        wants = [what for what, asked in (("export a cache (gha-cache, cache-to)", self.gha_cache or self.cache_to),
                                          ("build several platforms", len(self.platforms) > 1),
                                          ("attach an SBOM", self.sbom), ("attach provenance", self.provenance))
                 if asked]
        if wants and self.driver() == "docker":
            raise UsageError(f"docker buildx builder '{self.instance or 'default'}' uses the 'docker' driver, which "
                             f"cannot {' or '.join(wants)}: set up a docker-container builder (in a workflow "
                             "docker/setup-buildx-action, which the fnops action runs when `builder` is empty; else "
                             "`docker buildx create --driver docker-container --name fnops`) and pass its name as "
                             "--buildx-builder (the action's `builder`), or use --builder buildah")

    def command(self, ctx, dockerfile, ref, metadata_file, *, build_args=(), push=True, scope=None,
                target: str | None = None, load: bool = False) -> list[str]:
        """The buildx command line. Pushing uses the registry exporter with rewritten file
        timestamps (SOURCE_DATE_EPOCH, set in the environment, gives the rest); a dry run
        uses the cache-only exporter, which pushes and loads nothing; `load` (not pushing)
        loads the image into docker, where `fnops ship` runs a function's `test:`."""
        args = ["docker", "buildx", "build", "-f", dockerfile, "-t", ref, "--metadata-file", metadata_file,
                f"--provenance={self.provenance_flag()}", f"--sbom={'true' if self.sbom else 'false'}"]
        if self.instance:
            args[3:3] = ["--builder", self.instance]
        for extra in extra_refs(ref, self.tags):
            args += ["-t", extra]
        args += build_flags(self, target)
        if self.platforms:
            args += ["--platform", ",".join(self.platforms)]
        for c in self.cache_from:
            args += ["--cache-from", c]
        for c in self.cache_to:
            args += ["--cache-to", c]
        if self.gha_cache and scope and not (self.cache_from or self.cache_to):
            # One cache scope per function, or functions evict each other's layers.
            args += ["--cache-from", f"type=gha,scope={scope}", "--cache-to", f"type=gha,mode=max,scope={scope}"]
        for a in build_args:
            args += ["--build-arg", a]
        args += ["--output", "type=registry,rewrite-timestamp=true" if push else "type=docker" if load
                 else "type=cacheonly"]
        return [*args, ctx]

    def build(self, ctx, dockerfile, ref, *, build_args=(), tls_verify=True, scope=None,
              timestamp: int | None = None, push: bool = True, target: str | None = None,
              load: bool = False) -> None:
        self.check_driver()
        env = dict(os.environ)
        if timestamp is not None:
            env["SOURCE_DATE_EPOCH"] = str(timestamp)
        with tempfile.TemporaryDirectory(prefix="fnops-buildx-") as d:
            meta = os.path.join(d, "metadata.json")
            code, text = _run_builder(self.command(ctx, dockerfile, ref, meta, build_args=build_args, scope=scope,
                                                   push=push, target=target, load=load and not push), env,
                                      _label(ref))
            if code != 0:
                if "push" in text.lower() and ("unauthorized" in text.lower() or "denied" in text.lower()):
                    raise _push_error("docker", ref, text)
                raise BuildError(f"build of {ref} failed: {_tail(text, 1)}", text)
            try:
                with open(meta) as f:
                    self._metadata[ref] = json.load(f)
            except (OSError, ValueError):
                self._metadata[ref] = {}
            if push:
                self._digests[ref] = Digest(self._metadata[ref]["containerimage.digest"])

    def push(self, ref: str, *, tls_verify=True) -> Digest:
        return self._digests.pop(ref)  # buildx pushed while building

    def metadata(self, ref: str) -> dict:
        """buildx's --metadata-file, as build-push-action's `metadata` output holds it."""
        return dict(self._metadata.get(ref) or {})

    def remove(self, ref: str) -> None:
        pass


DOCKER_ONLY = ("provenance", "sbom", "gha_cache", "cache_from", "cache_to", "instance")
# What buildah cannot produce and is only ever a default: dropped, not refused.
DOCKER_DEFAULTS = ("default_provenance",)


def builder(name: str, **kw):
    factories = {"buildah": Buildah, "docker": Docker}
    if name not in factories:
        raise UsageError(f"unknown builder '{name}' (buildah, docker)")
    if name == "buildah":
        asked = [k for k in DOCKER_ONLY if kw.get(k)]
        if asked:
            flag = "buildx-builder" if asked[0] == "instance" else asked[0].replace('_', '-')
            raise UsageError(f"--{flag} needs --builder docker (buildah has no {flag.replace('-', ' ')}); "
                             "the action's `builder: docker`")
        kw = {k: v for k, v in kw.items() if k not in DOCKER_ONLY + DOCKER_DEFAULTS}
    return factories[name](**kw)
