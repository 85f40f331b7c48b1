"""Prometheus text exposition of the bridge's counters and the outbox state."""

from __future__ import annotations

import threading
from collections import Counter


class Metrics:
    def __init__(self):
        self.lock = threading.Lock()
        self.counters: Counter = Counter()

    def inc(self, name: str, n: int = 1, **labels) -> None:
        key = (name, tuple(sorted(labels.items())))
        with self.lock:
            self.counters[key] += n

    def render(self, store) -> str:
        lines = []
        with self.lock:
            items = sorted(self.counters.items())
        seen = set()
        for (name, labels), value in items:
            if name not in seen:
                lines.append(f"# TYPE {name} counter")
                seen.add(name)
            lab = ",".join(f'{k}="{v}"' for k, v in labels)
            lines.append(f"{name}{{{lab}}} {value}" if lab else f"{name} {value}")
        counts = store.counts()
        lines.append("# TYPE fnops_bridge_events gauge")
        lines.append(f"fnops_bridge_events {counts['events']}")
        lines.append("# TYPE fnops_bridge_deliveries gauge")
        for (sink, state), n in sorted(counts["deliveries"].items()):
            lines.append(f'fnops_bridge_deliveries{{sink="{sink}",state="{state}"}} {n}')
        return "\n".join(lines) + "\n"
