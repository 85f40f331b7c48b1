"""Render the shipped Argo CD notifications templates with Application data, in Python.

Argo CD evaluates templates with Go text/template + sprig. The Go harness
(tests/argocd-notifications, test_argocd_notifications.py) runs the real engine; this
evaluates exactly the subset the shipped bodies use — `toJson`, `dict`, `list`, `dig`,
`nil`, string literals and `.app…`/`.context…` paths, with Go's semantics (a missing map key
is nil) — and fails on anything else, so the bodies cannot drift past what is tested here;
test_argocd_notifications.py checks that both give the same body for every sample.
"""

from __future__ import annotations

import copy
import json
import os
import re

import yaml

from conftest import ROOT

TOKEN = re.compile(r'\s*(?:(\()|(\))|"((?:[^"\\]|\\.)*)"|([.\w-]+))')
CM = os.path.join(ROOT, "notifications", "argocd-notifications-cm.yaml")
# A fixed moment: a state rendered twice gives the same event (same key), as Argo CD's would.
AT = "2026-11-22T10:05:00Z"


def configmap() -> dict:
    with open(CM) as f:
        return yaml.safe_load(f)


def body_templates() -> dict:
    """event -> body template text, for every fnops template in the ConfigMap."""
    out = {}
    for key, value in configmap()["data"].items():
        if key.startswith("template.fnops-"):
            body = yaml.safe_load(value)["webhook"]["fnops-bridge"]["body"]
            event = re.search(r'"event" "([a-z-]+)"', body).group(1)
            out[event] = body
    return out


def body_template(event: str = "deployed") -> str:
    return body_templates()[event]


def _tokens(text):
    pos, out = 0, []
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        m = TOKEN.match(text, pos)
        if not m:
            raise ValueError(f"cannot parse template at {text[pos:pos + 30]!r}")
        out.append(("(" if m.group(1) else ")" if m.group(2) else "str" if m.group(3) is not None else "word",
                    m.group(3) if m.group(3) is not None else m.group(0).strip()))
        pos = m.end()
    return out


def _parse(tokens, i):
    kind, val = tokens[i]
    if kind == "(":
        items, i = [], i + 1
        while tokens[i][0] != ")":
            node, i = _parse(tokens, i)
            items.append(node)
        return ("call", items), i + 1
    if kind == "str":
        return ("lit", json.loads(f'"{val}"')), i + 1
    return ("word", val), i + 1


def _path(data, dotted):
    cur = data
    for part in dotted.strip(".").split("."):
        cur = cur.get(part) if isinstance(cur, dict) else None
    return cur


def _eval(node, data):
    kind, val = node
    if kind == "lit":
        return val
    if kind == "word":
        if val.startswith("."):
            return _path(data, val)
        if val == "nil":
            return None
        return _call(val, [], data)
    fn, *args = val
    if fn[0] != "word":
        raise ValueError("call must start with a function name")
    return _call(fn[1], args, data)


def _call(name, args, data):
    vals = [_eval(a, data) for a in args]
    if name == "dict":
        return {vals[i]: vals[i + 1] for i in range(0, len(vals), 2)}
    if name == "list":
        return list(vals)
    if name == "toJson":
        return json.dumps(vals[0], separators=(",", ":"))
    if name == "dig":
        *keys, default, obj = vals
        cur = obj
        for k in keys:
            if not isinstance(cur, dict):
                raise ValueError("dig into a value that is not a map")  # sprig panics there too
            if k not in cur:
                return default
            cur = cur[k]
        return cur
    raise ValueError(f"template uses {name!r}, which this evaluator does not implement")


def natural_event(app: dict) -> str:
    """The event a test state stands for (its trigger): by the operation's phase and health."""
    st = app.get("status") or {}
    if (st.get("sync") or {}).get("status") == "Unknown":
        return "render-failed"
    phase, health = (st.get("operationState") or {}).get("phase"), (st.get("health") or {}).get("status")
    if phase == "Running":
        return "syncing"
    if phase in ("Failed", "Error"):
        return "sync-failed"
    if phase == "Succeeded" and health in ("Healthy", "Degraded"):
        return "deployed" if health == "Healthy" else "degraded"
    raise ValueError(f"no fnops trigger fires for phase {phase} and health {health}")


def render(app: dict, event: str | None = None, argocd_url: str = "https://argocd.example.com") -> str:
    text = body_template(event or natural_event(app)).strip()
    m = re.fullmatch(r"\{\{(.*)\}\}", text, re.S)
    if not m:
        raise ValueError("body must be a single {{ … }} action")
    tokens = _tokens(m.group(1))
    node, i = _parse([("(", "(")] + tokens + [(")", ")")], 0)
    if i != len(tokens) + 2:
        raise ValueError("trailing tokens in template")
    return _eval(node, {"app": app, "context": {"argocdUrl": argocd_url}})


def _at(ts: str, seconds: int) -> str:
    import datetime as dt

    t = dt.datetime.strptime(ts, "%Y-%m-%dT%H:%M:%SZ") + dt.timedelta(seconds=seconds)
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def application(sample: str, *, function: str, env: str, revision: str, phase: str, health: str,
                message: str = "", rollback: bool = False, at: str = AT) -> dict:
    """A real Application sample from shared/schemas/apis with fnops labels and a state that
    hangs together: an operation that started at `at` - 5s and (unless Running) finished at
    `at`, health evaluated 30 s after it, the function's Knative Service carrying that health.
    `rollback`: the operation is Argo CD's own rollback to an earlier deployment."""
    import schemas

    with open(os.path.join(schemas.schema_dir(), "apis", f"argocd-application-{sample}.json")) as f:
        app = json.load(f)
    app["metadata"]["name"] = f"{function}-{env}"
    app["metadata"].setdefault("labels", {}).update({"fnops.dev/function": function, "fnops.dev/environment": env})
    app["spec"].setdefault("destination", {})["namespace"] = f"functions-{env}"
    status = app.setdefault("status", {})
    status.setdefault("sync", {}).update(status="Synced", revision=revision)
    since = _at(at, 30)
    status["health"] = {"status": health, "lastTransitionTime": since}
    status.pop("resourceHealthSource", None)
    resource_health = {"status": health, **({"message": message} if message and health == "Degraded" else {})}
    status["resources"] = [{"group": "serving.knative.dev", "kind": "Service", "name": function,
                            "namespace": f"functions-{env}", "status": "Synced", "version": "v1",
                            "health": resource_health}]
    op = status.setdefault("operationState", {})
    op.update(phase=phase, message=message, startedAt=_at(at, -5))
    op.pop("finishedAt", None)
    op.pop("syncResult", None)
    if phase != "Running":
        op["finishedAt"] = at
        op["syncResult"] = {"revision": revision}
    operation = op.setdefault("operation", {})
    operation["sync"] = {"revision": revision}
    operation["initiatedBy"] = {"automated": True}
    app["spec"].setdefault("syncPolicy", {})["automated"] = {"prune": True, "selfHeal": True}
    earlier = {"id": 1, "revision": "0" * 40, "deployStartedAt": _at(at, -86400), "deployedAt": _at(at, -86398)}
    status["history"] = [earlier]
    if rollback:
        # Argo CD refuses a rollback while auto-sync is on; it syncs a revision from history.
        app["spec"]["syncPolicy"].pop("automated")
        operation["initiatedBy"] = {"username": "admin@example.com"}
        operation["sync"]["source"] = copy.deepcopy(app["spec"].get("source") or {})
        status["history"] = [{"id": 0, "revision": revision, "deployStartedAt": _at(at, -172800),
                              "deployedAt": _at(at, -172798)}, earlier]
    if phase == "Succeeded":
        status["history"].append({"id": status["history"][-1]["id"] + 1, "revision": revision,
                                  "deployStartedAt": op["startedAt"], "deployedAt": _at(at, -1)})
    status.setdefault("summary", {})["images"] = ["ghcr.io/acme/functions/x@sha256:" + "a" * 64]
    return app
