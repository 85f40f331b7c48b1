"""Argo CD's notification engine, built from tests/argocd-notifications, for the tests.

`build()` compiles the Go program once per session (Go ≥ its go.mod's version on PATH; the
first build downloads and compiles for a minute or two). Without Go a test skips, except in
CI (`CI=true`), where it fails: CI must run these.

`evaluate(states)` runs the shipped triggers and templates over Application states at chosen
moments and returns what each would send. `sent(results)` turns a sequence of evaluations
into what the engine's controller sends when every send succeeds: a trigger fires when its
condition becomes true and fires again only after it was false (no trigger has oncePer).
`Controller` runs the engine's own controller, notified-state bookkeeping and webhook
service included, against a bridge.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import threading
import time

import pytest

from conftest import ROOT, stop_process
from gotool import go_env, require_go

HARNESS = os.path.join(ROOT, "tests", "argocd-notifications")
CM = os.path.join(ROOT, "notifications", "argocd-notifications-cm.yaml")


# The expr-lang each Argo CD version builds with (its go.mod), as the module file that pins it.
MODFILES = {"2.14": "go.expr-1.16.mod", "3.0": "go.expr-1.16.mod", "3.2": "go.mod"}


def build(dest_dir) -> dict:
    """{Argo CD version: binary}: the program built against the expr-lang that version uses."""
    go = require_go(HARNESS, "tests/argocd-notifications")
    built = {}
    for modfile in sorted(set(MODFILES.values())):
        binary = os.path.join(str(dest_dir), f"argocd-notifications-{modfile[:-4]}")
        r = subprocess.run([go, "build", f"-modfile={modfile}", "-o", binary, "."], cwd=HARNESS, env=go_env(),
                           capture_output=True, text=True, timeout=1800)
        if r.returncode != 0:
            pytest.fail(f"building tests/argocd-notifications ({modfile}) failed:\n{r.stdout}{r.stderr}", pytrace=False)
        built[modfile] = binary
    return {version: built[m] for version, m in MODFILES.items()}


def evaluate(binary: str, states: list[tuple[str, dict, str]]) -> list[dict]:
    """[(id, Application, now RFC 3339)] -> the engine's verdict for each, in order."""
    lines = "".join(json.dumps({"id": i, "app": a, "now": now}) + "\n" for i, a, now in states)
    r = subprocess.run([binary, "eval", "--config", CM], input=lines, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    out = [json.loads(x) for x in r.stdout.splitlines()]
    assert [o["id"] for o in out] == [s[0] for s in states]
    for o in out:
        assert o["errors"] == [], o
    return out


def fired(result: dict) -> set[str]:
    return {t for t, v in result["triggers"].items() if v["triggered"]}


def sent(results: list[dict], primed: set[str] = frozenset()) -> list[tuple[str, dict]]:
    """(state id, body) for every send the controller makes over the sequence: on each
    trigger's rising edge (skipped states are not evaluated at all)."""
    out, holding = [], set(primed)
    for r in results:
        if r.get("skipped"):
            continue
        now = fired(r)
        by_trigger = {s["trigger"]: s for s in r["sends"]}
        for t in sorted(now - holding):
            out.append((r["id"], json.loads(by_trigger[t]["body"])))
        holding = now
    return out


class Controller:
    """notifications-engine's controller, sending to `url`, fed Application states."""

    def __init__(self, binary: str, url: str, token: str, resync: str = "1s", retry_wait: str | None = None,
                 log_path=None):
        self.log = open(log_path, "ab") if log_path else subprocess.DEVNULL
        extra = ["--retry-wait", retry_wait] if retry_wait else []
        self.proc = subprocess.Popen([binary, "controller", "--config", CM, "--url", url, "--token", token,
                                      "--resync", resync, "-v", *extra], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self.log, text=True, bufsize=1)
        self.lines: queue.Queue = queue.Queue()
        self.seen: list[dict] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        self.expect(lambda e: e["event"] == "ready", 30)

    def _read(self):
        for line in self.proc.stdout:
            self.lines.put(json.loads(line))

    def expect(self, predicate, timeout: float = 30, since: int | None = None) -> dict:
        """The first report matching `predicate`: among those already read from index `since`
        on (when given), else the next ones."""
        if since is not None:
            for e in self.seen[since:]:
                if predicate(e):
                    return e
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                e = self.lines.get(timeout=0.2)
            except queue.Empty:
                assert self.proc.poll() is None, "the engine's controller exited"
                continue
            self.seen.append(e)
            if predicate(e):
                return e
        raise AssertionError(f"the engine's controller did not report it in {timeout}s; last: {self.seen[-5:]}")

    def apply(self, app: dict) -> None:
        self.proc.stdin.write(json.dumps({"op": "apply", "app": app}) + "\n")
        self.proc.stdin.flush()
        name = app["metadata"]["name"]
        self.expect(lambda e: e["event"] == "applied" and e["app"] == name)

    def stop(self):
        if self.proc.stdin and not self.proc.stdin.closed:
            self.proc.stdin.close()
        stop_process(self.proc)
        self.reader.join(10)
        self.proc.stdout.close()
        if self.log is not subprocess.DEVNULL:
            self.log.close()
