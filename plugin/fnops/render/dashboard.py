"""A Grafana dashboard per function, as a ConfigMap the Grafana sidecar (k8s-sidecar, as
kube-prometheus-stack runs it) loads by label: request rate, errors, latency percentiles,
SLO burn rates, replicas, and the revision pinned now and before.

Every query reads the same series, through the same selector, as the SLO alerts
(render/metrics.py), so a panel shows what an alert sees. Queries use fixed windows and no
Grafana macros: each must also parse as plain PromQL (tests/test_dashboard.py runs promtool
over them).
"""

from __future__ import annotations

import json
from hashlib import sha256

from ..spec.model import BURNS, LATENCY_QUANTILE, Function, Release
from ..spec.units import format_number
from . import common
from .block import Block
from .metrics import number, selector
from .options import RenderOptions

DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
SCHEMA_VERSION = 39  # Grafana 10.4 / 11: the panels below need no migration on load
WINDOW = "5m"
HALF = 12  # two panels a row on Grafana's 24-column grid
HEIGHT = 8


def config_map(fn: Function, release: Release, revision: str, opts: RenderOptions) -> dict:
    ns = opts.namespace
    where = opts._replace(namespace=opts.platform.dashboard_namespace or ns)
    key = f"fnops-{ns or fn.environment}-{fn.name}.json"
    text = json.dumps(dashboard(fn, release, revision, opts), indent=1, ensure_ascii=False) + "\n"
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": common.metadata(f"{fn.name}-dashboard", fn, where, extra_labels=dict(opts.platform.dashboard_labels)),
        "data": {key: Block(text)},
    }


def dashboard(fn: Function, release: Release, revision: str, opts: RenderOptions) -> dict:
    ns = opts.namespace
    scope = f"{ns}/{fn.name}" if ns else f"{fn.environment}/{fn.name}"
    panels = _panels(fn, release, revision, opts)
    return {
        # Grafana keys dashboards by uid (≤ 40 characters) across every namespace the sidecar reads.
        "uid": "fnops-" + sha256(scope.encode()).hexdigest()[:20],
        "title": f"{fn.name} · {fn.environment}" + (f" ({ns})" if ns else ""),
        "description": f"fnops: {fn.name} in {fn.environment}. Rendered from the function folder; edits in Grafana are "
                       "lost on the next sync.",
        "tags": ["fnops", fn.name, fn.environment or ""],
        "editable": False,
        "graphTooltip": 1,
        "time": {"from": "now-6h", "to": "now"},
        "refresh": "1m",
        "schemaVersion": SCHEMA_VERSION,
        "templating": {"list": [{"type": "datasource", "name": "datasource", "label": "Prometheus",
                                 "query": "prometheus", "hide": 0, "refresh": 1}]},
        "annotations": {"list": [{"builtIn": 1, "datasource": {"type": "grafana", "uid": "-- Grafana --"},
                                  "enable": True, "hide": True, "iconColor": "rgba(0, 211, 255, 1)",
                                  "name": "Annotations & Alerts", "type": "dashboard"}]},
        "panels": panels,
    }


def queries(dash: dict) -> list[str]:
    """Every PromQL expression on the dashboard."""
    return [t["expr"] for p in dash["panels"] for t in p.get("targets", ())]


def _panels(fn: Function, release: Release, revision: str, opts: RenderOptions) -> list[dict]:
    sel = selector(fn.name, opts)
    f = sel.family
    bounds, unit = opts.platform.latency_buckets
    slo = fn.slo
    seconds = "" if unit == 1 else f" * {number(unit)}"
    ns_match = f'namespace="{opts.namespace}", ' if opts.namespace else ""
    charts = [
        _chart("Requests / s by status", "reqps", [(sel.by(f.status, f.requests, WINDOW), f"{{{{{f.status}}}}}")]),
        _chart("Errors (5xx share)", "percentunit", [(sel.error_ratio(WINDOW), "5xx")],
               slo.error_rate_percent / 100 if slo and slo.error_rate_percent is not None else None),
        _chart("Latency", "s", [(sel.quantile(q, WINDOW) + seconds, f"p{round(q * 100)}") for q in (0.5, 0.95, 0.99)],
               slo.latency_p95_seconds if slo and slo.latency_p95_seconds is not None else None),
        _chart("Requests / s by revision", "reqps", [(sel.by(f.revision, f.requests, WINDOW), f"{{{{{f.revision}}}}}")]),
        # kube-state-metrics: Knative names a revision's Deployment `<revision>-deployment`.
        _chart("Replicas by revision", "short", [(
            f'sum by (deployment) (kube_deployment_status_replicas_available{{{ns_match}'
            f'deployment=~"{fn.name}-[0-9a-f]{{8}}-deployment"}})', "{{deployment}}")]),
    ]
    windows = sorted({w for _, long_w, short_w, *_ in BURNS for w in (long_w, short_w)}, key=_seconds)
    if slo and slo.error_rate_percent is not None:
        budget = number(slo.error_rate_percent / 100)
        charts.append(_burn("Error budget burn rate", [(f"({sel.error_ratio(w)}) / {budget}", w) for w in windows]))
    if slo and slo.latency_p95_seconds is not None:
        threshold = round(slo.latency_p95_seconds / unit, 9)
        budget = number(1 - LATENCY_QUANTILE)
        charts.append(_burn("Latency budget burn rate",
                            [(f"{sel.slow_ratio(w, threshold, bounds)} / {budget}", w) for w in windows]))
    panels = [_release(fn, release, revision)]
    for i, panel in enumerate(charts):
        panel["gridPos"] = {"h": HEIGHT, "w": HALF, "x": (i % 2) * HALF, "y": 4 + (i // 2) * HEIGHT}
        panels.append(panel)
    for i, panel in enumerate(panels, 1):
        panel["id"] = i
    return panels


def _release(fn: Function, release: Release, revision: str) -> dict:
    lines = [f"**Current revision** `{revision}` — `{release.image}`"]
    if release.previous_revision or release.previous_image:
        lines.append(f"**Previous revision** `{release.previous_revision or '?'}` — `{release.previous_image or '?'}`")
    if fn.canary is not None and release.previous_revision:
        lines.append(f"Canary: {fn.canary}% to the current revision")
    if release.source_commit:
        lines.append(f"Source `{release.source_repo or '?'}@{str(release.source_commit)[:12]}`"
                     + (f", released {release.released_at}" if release.released_at else ""))
    return {"type": "text", "title": "Release", "gridPos": {"h": 4, "w": 24, "x": 0, "y": 0},
            "options": {"mode": "markdown", "content": "\n\n".join(lines)}}


def _chart(title: str, unit: str, targets: list, threshold: float | None = None) -> dict:
    defaults: dict = {"unit": unit, "min": 0}
    if threshold is not None:
        defaults["thresholds"] = _steps([(threshold, "red")])
        defaults["custom"] = {"thresholdsStyle": {"mode": "dashed"}}
    return {
        "type": "timeseries",
        "title": title,
        "datasource": DATASOURCE,
        "targets": [{"refId": chr(ord("A") + i), "datasource": DATASOURCE, "expr": expr, "legendFormat": legend,
                     "range": True, "editorMode": "code"} for i, (expr, legend) in enumerate(targets)],
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": {"legend": {"displayMode": "list", "placement": "bottom", "showLegend": True, "calcs": []},
                    "tooltip": {"mode": "multi", "sort": "none"}},
    }


def _burn(title: str, targets: list) -> dict:
    panel = _chart(title, "x", targets)
    steps = sorted((factor, "red" if action == "rollback" else "orange") for _, _, _, factor, action in BURNS)
    panel["fieldConfig"]["defaults"].update(thresholds=_steps(steps), custom={"thresholdsStyle": {"mode": "dashed"}})
    panel["description"] = ("How many times faster than the SLO allows the budget burns. Alerts fire when both windows "
                            "of a pair are above its line: " + ", ".join(
                                f"{s.lower()} {lw}+{sw} over {format_number(f)}×" for s, lw, sw, f, _ in BURNS) + ".")
    return panel


def _steps(steps: list) -> dict:
    # Grafana takes the first step as the base (-Infinity) whatever its value; 0 keeps the
    # JSON a plain number.
    return {"mode": "absolute", "steps": [{"color": "green", "value": 0}]
            + [{"color": color, "value": value} for value, color in steps]}


def _seconds(window: str) -> int:
    return int(window[:-1]) * {"m": 60, "h": 3600}[window[-1]]
