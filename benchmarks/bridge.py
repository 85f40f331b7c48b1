#!/usr/bin/env python3
"""Events accepted per second by `fnops bridge serve` with the durable outbox
(SQLite WAL, synchronous=FULL: each 202 comes after the commit), and accept latency
percentiles. The bridge runs as a process on 127.0.0.1; Slack and GitHub are the local
doubles from the tests, so the outbox worker delivers while the load runs.

    python benchmarks/bridge.py [--events 2000] [--clients 8]
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
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="fnops-bridge-bench-"))
    b = Bridge(tmp)
    b.start()
    try:
        app = argocd_template.application("operation-finished", function="checkout", env="dev", revision=b.revision,
                                          phase="Running", health="Progressing")
        base = json.loads(argocd_template.render(app))
        bodies = []
        for i in range(a.events):
            body = dict(base, operationRevision=f"{i:040x}")  # distinct revisions: no folding
            bodies.append(json.dumps(body).encode())
        latencies: list[float] = []
        lock = threading.Lock()
        statuses = []

        def client(chunk):
            conn = http.client.HTTPConnection("127.0.0.1", b.port, timeout=30)
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
        threads = [threading.Thread(target=client, args=(c,)) for c in chunks]
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - t0
        assert statuses.count(202) == a.events, {s: statuses.count(s) for s in set(statuses)}
        latencies.sort()
        p = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000  # noqa: E731
        print(f"accepted {a.events} events with {a.clients} clients in {wall:.2f} s: {a.events / wall:.0f} events/s")
        print(f"accept latency p50 {p(0.50):.1f} ms, p99 {p(0.99):.1f} ms, max {latencies[-1] * 1000:.1f} ms")
    finally:
        b.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
