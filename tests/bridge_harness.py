"""The bridge as a real process, with Slack and GitHub doubles and a bare GitOps repo."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest
import yaml

from conftest import ROOT, stop_process
from containers import free_port
from github_double import GitHubDouble
from gitrepo import clone, git, make_origin
from slack_double import SlackDouble

TOKEN = "bridge-token-" + "x" * 20
HMAC_SECRET = "hmac-secret-" + "y" * 20
NEW_IMAGE = "ghcr.io/acme/functions/checkout:sha-1a2b3c4@sha256:" + "b" * 64


class Bridge:
    def __init__(self, tmp_path, *, slack_channels=("C0DEPLOYS", "C0TEAM"), bake="15m", extra=None, env=None,
                 nofile=None):
        self.tmp = tmp_path
        self.origin = make_origin(tmp_path)
        work = clone(self.origin, tmp_path / "dev-clone")
        self.src = git(work, "rev-parse", "HEAD")  # the source commit the release records
        # A real release with a previous one: checkout in dev (rollback: auto there).
        r = subprocess.run([shutil.which("fnops"), "bump", "checkout", "--env", "dev", "--image", NEW_IMAGE,
                            "--source-repo", "acme/functions", "--source-commit", self.src], cwd=work,
                           capture_output=True, text=True, env={**os.environ, "SOURCE_DATE_EPOCH": str(int(time.time()))})
        assert r.returncode == 0, r.stderr
        self.revision = git(self.origin, "rev-parse", "main")
        self.slack = SlackDouble(token="xoxb-bridge", channels=slack_channels).__enter__()
        self.gh = GitHubDouble(token="ghp_bridge").__enter__()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.data = tmp_path / "data"
        self.config = tmp_path / "bridge.yaml"
        self.config.write_text(yaml.safe_dump(_merge({
            "listen": f"127.0.0.1:{self.port}",
            "auth": {"bearerTokenEnv": "FNOPS_BRIDGE_TOKEN", "hmacSecretEnv": "FNOPS_BRIDGE_HMAC"},
            "store": f"sqlite:///{self.data}/bridge.db",
            "gitops": {"repo": f"file://{self.origin}", "branch": "main", "auditBranch": "fnops-audit",
                       "githubRepo": "acme/functions"},
            "slack": {"tokenEnv": "SLACK_BOT_TOKEN", "defaultChannel": "#deploys", "baseUrl": self.slack.url + "/api/",
                      "allowedChannels": ["#deploys", "#checkout", "#team-*"]},
            "argocd": {"url": "https://argocd.example.com"},
            "github": {"tokenEnv": "GITHUB_TOKEN", "baseUrl": self.gh.url},
            "rollback": {"bakeTime": bake},
        }, extra or {})))
        self.env = {**{k: v for k, v in os.environ.items() if not k.startswith(("ARGOCD_", "GITHUB_"))},
                    "FNOPS_BRIDGE_TOKEN": TOKEN, "FNOPS_BRIDGE_HMAC": HMAC_SECRET, "SLACK_BOT_TOKEN": "xoxb-bridge",
                    "GITHUB_TOKEN": "ghp_bridge", **(env or {})}
        self.proc = None
        self.log = None
        self.nofile = nofile  # the open-file limit (soft and hard) of the process, as a container may set it

    def start(self):
        self.log = open(self.tmp / "bridge.log", "ab")
        cmd = [shutil.which("fnops"), "bridge", "serve", "--config", str(self.config)]
        if self.nofile:  # the shell sets the limit and becomes the bridge (exec): the pid is the bridge's
            cmd = ["/bin/sh", "-c", f'ulimit -n {int(self.nofile)} && exec "$@"', "sh", *cmd]
        self.proc = subprocess.Popen(cmd, env=self.env, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"bridge exited: {self.logs()}")
            try:
                with urllib.request.urlopen(self.url + "/readyz", timeout=1) as r:
                    if r.status == 200:
                        return self
            except OSError:
                time.sleep(0.1)
        raise AssertionError(f"bridge did not become ready: {self.logs()}")

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        self.log.close()

    def stop(self):
        if self.proc:
            stop_process(self.proc)
        if self.log and not self.log.closed:
            self.log.close()
        self.slack.__exit__(None, None, None)
        self.gh.__exit__(None, None, None)

    def logs(self) -> str:
        p = self.tmp / "bridge.log"
        return p.read_text(errors="replace") if p.exists() else ""

    def post(self, path, body, *, token=TOKEN, hmac_secret=None, raw=None, headers=None, url=None):
        data = raw if raw is not None else json.dumps(body).encode()
        h = {"content-type": "application/json", **(headers or {})}
        if token:
            h["authorization"] = f"Bearer {token}"
        if hmac_secret:
            h["x-signature"] = "sha256=" + hmac.new(hmac_secret.encode(), data, hashlib.sha256).hexdigest()
        req = urllib.request.Request((url or self.url) + path, data=data, headers=h, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, json.loads(r.read() or b"null")
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"null")

    def metrics(self) -> str:
        with urllib.request.urlopen(self.url + "/metrics", timeout=5) as r:
            return r.read().decode()

    def wait(self, predicate, timeout=30, what="condition"):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {what}\n--- bridge log ---\n{self.logs()[-3000:]}")

    def pending(self) -> int:
        return sum(int(float(line.rsplit(" ", 1)[1])) for line in self.metrics().splitlines()
                   if line.startswith("fnops_bridge_deliveries{") and 'state="pending"' in line)

    def new_revisions(self, n: int) -> list[str]:
        """n more commits on main with main's tree: revisions of the same release, each a
        distinct event to the bridge (as a re-sync of the same Application would be)."""
        head = git(self.origin, "rev-parse", "main")
        stream, when = [], int(time.time())
        for i in range(n):
            msg = f"revision {i}\n".encode()
            stream.append(b"commit refs/heads/main\nmark :%d\ncommitter dev <dev@example.com> %d +0000\ndata %d\n%s"
                          % (i + 1, when, len(msg), msg))
            if i == 0:
                stream.append(b"from %s\n" % head.encode())
            stream.append(b"\n")
        marks = self.tmp / "revision-marks"
        subprocess.run(["git", "fast-import", "--quiet", f"--export-marks={marks}"], cwd=self.origin,
                       input=b"".join(stream), check=True, capture_output=True)
        shas = dict(line.split() for line in marks.read_text().splitlines())
        return [shas[f":{i + 1}"] for i in range(n)]

    def audit_lines(self) -> list[dict]:
        p = subprocess.run(["git", "ls-tree", "-r", "--name-only", "fnops-audit"], cwd=self.origin,
                           capture_output=True, text=True)
        out = []
        for path in p.stdout.split():
            out += [json.loads(x) for x in git(self.origin, "show", f"fnops-audit:{path}").splitlines() if x]
        return out


class Replica:
    """Another `fnops bridge serve` with the same config but its own port and data dir."""

    def __init__(self, b: Bridge, n: int):
        self.b, self.port = b, free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        cfg = yaml.safe_load(b.config.read_text())
        cfg["listen"], cfg["dataDir"] = f"127.0.0.1:{self.port}", str(b.tmp / f"data-{n}")
        self.config = b.tmp / f"bridge-{n}.yaml"
        self.config.write_text(yaml.safe_dump(cfg))
        self.log = open(b.tmp / f"bridge-{n}.log", "ab")
        self.proc = subprocess.Popen([shutil.which("fnops"), "bridge", "serve", "--config", str(self.config)],
                                     env=b.env, stdout=self.log, stderr=subprocess.STDOUT)
        wait_ready(self.url, self.proc)

    def stop(self):
        stop_process(self.proc)
        self.log.close()


def wait_ready(url, proc, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, "bridge exited"
        try:
            with urllib.request.urlopen(url + "/readyz", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"{url} not ready")


def _merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def python():
    return sys.executable


@contextlib.contextmanager
def alertmanager(bridge, tmp_path, token: str = TOKEN):
    """Debian's prometheus-alertmanager, configured like notifications/alertmanager-receiver.yaml
    (its route, receiver and bearer authorization), posting to `bridge` without waiting to group;
    -> post(alerts) into its API, retried while it starts. Stopped on exit."""
    exe = shutil.which("prometheus-alertmanager")
    if exe is None:
        pytest.skip("prometheus-alertmanager is not installed (installed by .ci/run)")
    with open(os.path.join(ROOT, "notifications", "alertmanager-receiver.yaml")) as f:
        example = yaml.safe_load(f)
    receiver = example["receivers"][0]
    hook = receiver["webhook_configs"][0]
    hook["url"] = bridge.url + "/v1/alertmanager"
    hook["http_config"]["authorization"] = {"type": "Bearer", "credentials": token}
    route = dict(example["route"]["routes"][0], group_wait="0s", group_interval="1s")
    route.pop("continue")
    cfg = {"route": {"receiver": "fnops-bridge", "group_wait": "0s", "routes": [route]}, "receivers": [receiver]}
    (tmp_path / "am.yml").write_text(yaml.safe_dump(cfg))
    port = free_port()

    def post(alerts: list) -> None:
        deadline = time.monotonic() + 20
        while True:
            try:
                req = urllib.request.Request(f"http://127.0.0.1:{port}/api/v2/alerts", data=json.dumps(alerts).encode(),
                                             headers={"content-type": "application/json"}, method="POST")
                urllib.request.urlopen(req, timeout=2).close()
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    with open(tmp_path / "alertmanager.log", "wb") as am_log:
        am = subprocess.Popen([exe, f"--config.file={tmp_path / 'am.yml'}", f"--storage.path={tmp_path / 'am-data'}",
                               f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address="],
                              stdout=am_log, stderr=subprocess.STDOUT)
        try:
            yield post
        finally:
            stop_process(am, 10)
