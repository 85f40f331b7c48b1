#!/usr/bin/env python3
"""Events accepted per second by `fnops bridge serve` with the durable outbox
(SQLite WAL, synchronous=FULL: each 202 comes after the commit), and accept latency
percentiles. The bridge runs as a process on 127.0.0.1; Slack and GitHub are the local
doubles from the tests, so the delivery lanes work while the load runs.

Then, with GitHub hanging (every request held 60 s; the bridge's timeout 30 s), the time
from a degraded release's 202 to its Slack message and to its rollback commit: a slow
sink must delay neither.

With `--store postgresql` the outbox is a real PostgreSQL server (initdb into a temp dir)
shared by `--replicas N` bridge processes, the clients spread over them; every figure is
printed next to the SQLite one (`--store both`, the default, runs sqlite, then postgresql
with 1 and 3 replicas).

Last, the cost of Slack's lookup of a post whose outcome is unknown (it runs only then: after
a crash or outage between sending a top-level post and storing its ts): the Slack sink's time
per top-level delivery against the local Slack double, without the lookup (a first attempt),
with it when the message is absent (lookup, then post) and when it is found (lookup, adopt).

    python benchmarks/bridge.py [--events 2000] [--clients 8] [--hung-runs 5] [--store sqlite|postgresql|both]
                                [--replicas 3] [--lookup-runs 200]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests"))

import argocd_template  # noqa: E402
from bridge_harness import TOKEN, Bridge  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=2000)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--hung-runs", type=int, default=5)
    ap.add_argument("--store", choices=["sqlite", "postgresql", "both"], default="both")
    ap.add_argument("--replicas", type=int, default=3)
    ap.add_argument("--lookup-runs", type=int, default=200)
    a = ap.parse_args()
    if a.store in ("sqlite", "both"):
        accept_rate(a, "sqlite", 1)
    if a.store in ("postgresql", "both"):
        import postgres

        why = postgres.missing()
        if why:
            raise SystemExit(f"--store postgresql needs {why}")
        server = postgres.PostgresServer()
        try:
            for n in sorted({1, a.replicas}):
                server.reset()
                accept_rate(a, "postgresql", n, server)
        finally:
            server.close()
    if a.hung_runs:
        with_github_hanging(a.hung_runs)
    if a.lookup_runs:
        slack_lookup_cost(a.lookup_runs)
    return 0


def slack_lookup_cost(runs: int) -> None:
    """Per top-level delivery of the Slack sink (in process, SQLite outbox, the Slack double on
    127.0.0.1): first attempt; unknown outcome, absent; unknown outcome, found."""
    import statistics

    from fnops.bridge import config as bridge_config
    from fnops.bridge.context import Context
    from fnops.bridge.sinks import slack as slack_sink
    from fnops.bridge.store import open_store

    class Crash(BaseException):
        pass

    tmp = Path(tempfile.mkdtemp(prefix="fnops-bridge-lookup-"))
    b = Bridge(tmp)
    saved = {k: os.environ.get(k) for k in ("SLACK_BOT_TOKEN", "GITHUB_TOKEN", "FNOPS_BRIDGE_TOKEN", "FNOPS_BRIDGE_HMAC")}
    os.environ.update({k: b.env[k] for k in saved})
    store = open_store(f"sqlite:///{tmp}/data/bridge.db")
    crash_at = []
    real_crash_point = slack_sink.crash_point

    def crash_point(name):
        if crash_at and crash_at[0] == name:
            crash_at.pop()
            raise Crash(name)

    slack_sink.crash_point = crash_point
    import logging

    logging.getLogger("fnops.bridge").setLevel(logging.ERROR)  # each lookup says so: not the figures
    try:
        ctx = Context(bridge_config.load(str(b.config)), store, str(tmp / "data"))
        sink = slack_sink.SlackSink(ctx.config.slack, None, 15)
        store.put("slack-channel", "#deploys", "C0DEPLOYS")  # an earlier post revealed the ID
        seq = iter(range(1, 10 ** 9))

        def event():
            i = next(seq)
            return {"id": i, "key": f"bench-{i}", "kind": "syncing", "function": "checkout", "environment": "dev",
                    "release": {"image": f"ghcr.io/acme/checkout@sha256:{i:064x}", "source": {}}}

        def timed(prepare) -> float:
            ev = event()
            prepare(ev)
            t0 = time.perf_counter()
            sink.deliver(ev, ctx)
            return time.perf_counter() - t0

        def unknown(ev):  # attempted before, no ts stored, no refusal: the outcome is unknown
            store.put("slack-intent", f"{ev['id']}:post", {"at": time.time(), "open": True})

        def sent_then_crashed(ev):
            crash_at.append("slack:after-send")
            try:
                sink.deliver(ev, ctx)
            except Crash:
                pass

        results = {}
        for name, prepare in (("first attempt (no lookup)", lambda ev: None), ("unknown, absent (lookup+post)", unknown),
                              ("unknown, found (lookup+adopt)", sent_then_crashed)):
            times = sorted(timed(prepare) for _ in range(runs))
            results[name] = times
        base = statistics.median(results["first attempt (no lookup)"])
        for name, times in results.items():
            med = statistics.median(times)
            print(f"slack {name:<30} median {med * 1000:.2f} ms, p95 {times[int(0.95 * len(times))] * 1000:.2f} ms "
                  f"({med / base:.2f}x) over {runs} deliveries")
        print(f"  (every post is recent, so an absent message costs the bound: {slack_sink.LOOKUP_PAGES} pages of "
              f"{slack_sink.LOOKUP_LIMIT}; channel history at the end: {len(b.slack.top_level())} top-level messages)")
    finally:
        slack_sink.crash_point = real_crash_point
        store.close()
        b.stop()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        shutil.rmtree(tmp, ignore_errors=True)


def with_github_hanging(runs: int) -> None:
    import statistics
    import subprocess

    to_slack, to_rollback = [], []
    for i in range(runs):
        tmp = Path(tempfile.mkdtemp(prefix="fnops-bridge-hung-"))
        b = Bridge(tmp, extra={"delivery": {"timeout": "30s"}})
        b.start()
        b.gh.hang = 60
        try:
            app = argocd_template.application("operation-finished", function="checkout", env="dev",
                                              revision=b.revision, phase="Succeeded", health="Degraded")
            code, _ = b.post("/v1/argocd", json.loads(argocd_template.render(app)))
            t0 = time.perf_counter()
            assert code == 202, code
            slack = rollback = None
            while time.perf_counter() - t0 < 30 and (slack is None or rollback is None):
                if slack is None and b.slack.top_level():
                    slack = time.perf_counter() - t0
                if rollback is None:
                    log = subprocess.run(["git", "log", "-1", "--format=%s", "main"], cwd=b.origin,
                                         capture_output=True, text=True).stdout
                    if log.startswith("fnops: roll back"):
                        rollback = time.perf_counter() - t0
                time.sleep(0.02)
            to_slack.append(slack if slack is not None else float("inf"))
            to_rollback.append(rollback if rollback is not None else float("inf"))
        finally:
            b.stop()
            shutil.rmtree(tmp, ignore_errors=True)
    print(f"github hanging ({runs} runs): accept→Slack median {statistics.median(to_slack):.2f} s "
          f"(max {max(to_slack):.2f}), accept→rollback commit median {statistics.median(to_rollback):.2f} s "
          f"(max {max(to_rollback):.2f})")


def accept_rate(a, store: str, replicas: int, server=None) -> None:
    from bridge_harness import Replica

    tmp = Path(tempfile.mkdtemp(prefix="fnops-bridge-bench-"))
    if store == "postgresql":
        b = Bridge(tmp, extra={"store": "env:FNOPS_BRIDGE_DSN", "dataDir": str(tmp / "data-0")},
                   env={"FNOPS_BRIDGE_DSN": server.dsn})
    else:
        b = Bridge(tmp)
    b.start()
    others = [Replica(b, i) for i in range(1, replicas)]
    ports = [b.port] + [r.port for r in others]
    try:
        app = argocd_template.application("operation-finished", function="checkout", env="dev", revision=b.revision,
                                          phase="Running", health="Progressing")
        base = json.loads(argocd_template.render(app))
        bodies = []
        # Distinct events (no folding), each delivered for real: the same release at new revisions.
        # (The Application's name must stay the one the ApplicationSet gives: the bridge ignores others.)
        for rev in b.new_revisions(a.events):
            bodies.append(json.dumps(dict(base, operationRevision=rev, syncRevision=rev)).encode())
        latencies: list[float] = []
        lock = threading.Lock()
        statuses = []

        def client(chunk, port):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            mine = []
            for data in chunk:
                t0 = time.perf_counter()
                conn.request("POST", "/v1/argocd", body=data, headers={
                    "content-type": "application/json", "authorization": f"Bearer {TOKEN}"})
                r = conn.getresponse()
                r.read()
                mine.append(time.perf_counter() - t0)
                statuses.append(r.status)
            conn.close()
            with lock:
                latencies.extend(mine)

        chunks = [bodies[i::a.clients] for i in range(a.clients)]
        threads = [threading.Thread(target=client, args=(c, ports[i % len(ports)])) for i, c in enumerate(chunks)]
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - t0
        assert statuses.count(202) == a.events, {s: statuses.count(s) for s in set(statuses)}
        latencies.sort()
        p = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000  # noqa: E731
        what = f"{store} x{replicas}"
        print(f"{what:<14} accepted {a.events} events with {a.clients} clients in {wall:.2f} s: "
              f"{a.events / wall:.0f} events/s; accept latency p50 {p(0.50):.1f} ms, p99 {p(0.99):.1f} ms, "
              f"max {latencies[-1] * 1000:.1f} ms")
    finally:
        for r in others:
            r.stop()
        b.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
