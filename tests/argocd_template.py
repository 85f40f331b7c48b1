"""Render the shipped Argo CD notifications template with Application data.

Argo CD evaluates templates with Go text/template + sprig; no Go toolchain is here, so
this evaluates exactly the subset the shipped body uses — `toJson`, `dict`, `list`, `dig`,
`hasKey`, string literals and `.app…`/`.context…` paths, with Go's semantics (a missing map
key is nil) — and fails on anything else, so the template cannot drift past what is tested.
"""

from __future__ import annotations

import json
import os
import re

import yaml

from conftest import ROOT

TOKEN = re.compile(r'\s*(?:(\()|(\))|"((?:[^"\\]|\\.)*)"|([.\w-]+))')


def body_template() -> str:
    with open(os.path.join(ROOT, "notifications", "argocd-notifications-cm.yaml")) as f:
        cm = yaml.safe_load(f)
    tmpl = yaml.safe_load(cm["data"]["template.fnops-bridge"])
    return tmpl["webhook"]["fnops-bridge"]["body"]


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
    if name == "hasKey":
        return isinstance(vals[0], dict) and vals[1] in vals[0]
    if name == "dig":
        *keys, default, obj = vals
        cur = obj
        for k in keys:
            if not isinstance(cur, dict) or k not in cur:
                return default
            cur = cur[k]
        return cur
    raise ValueError(f"template uses {name!r}, which this evaluator does not implement")


def render(app: dict, argocd_url: str = "https://argocd.example.com") -> str:
    text = body_template().strip()
    m = re.fullmatch(r"\{\{(.*)\}\}", text, re.S)
    if not m:
        raise ValueError("body must be a single {{ … }} action")
    tokens = _tokens(m.group(1))
    node, i = _parse([("(", "(")] + tokens + [(")", ")")], 0)
    if i != len(tokens) + 2:
        raise ValueError("trailing tokens in template")
    return _eval(node, {"app": app, "context": {"argocdUrl": argocd_url}})


def application(sample: str, *, function: str, env: str, revision: str, phase: str, health: str,
                message: str = "", rollback: bool = False) -> dict:
    """A real Application sample from shared/schemas/apis with fnops labels and a state."""
    import schemas

    with open(os.path.join(schemas.schema_dir(), "apis", f"argocd-application-{sample}.json")) as f:
        app = json.load(f)
    app["metadata"]["name"] = f"{function}-{env}"
    app["metadata"].setdefault("labels", {}).update({"fnops.dev/function": function, "fnops.dev/environment": env})
    app["spec"].setdefault("destination", {})["namespace"] = f"functions-{env}"
    status = app.setdefault("status", {})
    status.setdefault("sync", {}).update(status="Synced", revision=revision)
    status.setdefault("health", {})["status"] = health
    op = status.setdefault("operationState", {})
    op.update(phase=phase, message=message, finishedAt="2026-11-22T10:05:00Z")
    op.setdefault("syncResult", {})["revision"] = revision
    sync = op.setdefault("operation", {}).setdefault("sync", {})
    sync["revision"] = revision
    if rollback:
        sync["source"] = {"repoURL": "https://github.com/acme/functions.git"}
    else:
        sync.pop("source", None)
    op["operation"].setdefault("initiatedBy", {"automated": True})
    status.setdefault("summary", {})["images"] = ["ghcr.io/acme/functions/x@sha256:" + "a" * 64]
    return app
