"""SLO alerts as a PrometheusRule: for each objective (errors, latency) a fast-burn and a
slow-burn alert, multi-window as the SRE workbook writes them (spec.model.BURNS).

The bridge keys rollbacks on `fnops_function`, `fnops_environment` and `namespace`, and rolls
back only on the fast-burn alerts (bridge/events.py SLO_ALERTS); every alert says which it
is in `fnops_action` too, for Alertmanager routes.
"""

from __future__ import annotations

from ..spec.model import BURNS, LATENCY_QUANTILE, Function
from ..spec.units import format_number
from . import common, scaling
from .block import Block
from .metrics import number, selector
from .options import RenderOptions

SEVERITY = {"rollback": "critical", "notify": "warning"}


def alert_name(objective: str, speed: str) -> str:
    return f"Fnops{'ErrorBudget' if objective == 'errors' else 'LatencyBudget'}{speed}Burn"


ROLLBACK_ALERTS = tuple(alert_name(o, s) for o in ("errors", "latency") for s, *_, a in BURNS if a == "rollback")


def monitoring_namespace(opts: RenderOptions) -> RenderOptions:
    """Options whose namespace is where the PrometheusRule and PodMonitor go."""
    return opts._replace(namespace=opts.platform.rule_namespace or opts.namespace)


def prometheus_rule(fn: Function, opts: RenderOptions) -> dict:
    slo = fn.slo
    sel = selector(fn.name, opts)
    rules = []
    if slo.error_rate_percent is not None:
        budget = slo.error_rate_percent / 100
        rules += [_alert(fn, opts, "errors", burn, budget, sel.error_ratio, sel.requests) for burn in BURNS]
    if slo.latency_p95_seconds is not None:
        bounds, unit = opts.platform.latency_buckets
        threshold = round(slo.latency_p95_seconds / unit, 9)
        rules += [_alert(fn, opts, "latency", burn, round(1 - LATENCY_QUANTILE, 9),
                         lambda w: sel.slow_ratio(w, threshold, bounds), sel.latency_count) for burn in BURNS]
    groups = [{"name": f"fnops.{fn.name}.slo", "rules": rules}]
    scaling_group = scaling.group(fn, opts)  # scaling history for the bridge's audit log (render/scaling.py)
    if scaling_group:
        groups.append(scaling_group)
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": common.metadata(f"{fn.name}-slo", fn, monitoring_namespace(opts),
                                    extra_labels=dict(opts.platform.rule_labels)),
        "spec": {"groups": groups},
    }


def _alert(fn: Function, opts: RenderOptions, objective: str, burn: tuple, budget: float, ratio, requests) -> dict:
    speed, long_w, short_w, factor, action = burn
    f, b = number(factor), number(budget)
    expr = (f"(\n  {ratio(long_w)}\n) / {b} > {f}\n"
            f"and\n(\n  {ratio(short_w)}\n) / {b} > {f}\n"
            # Too few requests to tell a broken release from one unlucky request.
            f"and\n{requests(short_w)} >= {number(fn.slo.min_rate)}")
    labels = {"severity": SEVERITY[action], "fnops_function": fn.name, "fnops_environment": fn.environment or ""}
    if opts.namespace:
        # The bridge acts only on alerts from the function's namespace; Prometheus Operator's
        # enforcedNamespaceLabel sets the same value when the rule lives there.
        labels["namespace"] = opts.namespace
    labels.update({"fnops_slo": objective, "fnops_burn": speed.lower(), "fnops_action": action})
    what = (f"{format_number(fn.slo.error_rate_percent)}% errors" if objective == "errors"
            else f"p95 within {format_number(round(fn.slo.latency_p95_seconds * 1000, 3))}ms")
    does = "fnops rolls the release back" if action == "rollback" else "no automatic rollback"
    return {
        "alert": alert_name(objective, speed),
        "expr": Block(expr),
        "for": fn.slo.for_,
        "labels": labels,
        "annotations": {
            "summary": (f"{fn.name} in {fn.environment}: {'error' if objective == 'errors' else 'latency'} budget "
                        f"burning {{{{ $value | humanize }}}}× ({speed.lower()} burn)"),
            "description": (f"SLO {what}: the budget has burned faster than {f}× over both {long_w} and "
                            f"{short_w} ({does})."),
        },
    }
