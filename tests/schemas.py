"""Validate rendered objects the way an API server would — but stricter.

CRD schemas from shared/schemas/crds are turned into JSON Schema with unknown fields
forbidden (the API server would silently prune them and Argo CD would show drift forever).
Core kinds go through kubernetes-validate in strict mode.
"""

from __future__ import annotations

import copy
import functools
import os
import re

import jsonschema
import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def schema_dir() -> str:
    d = os.environ.get("FNOPS_SCHEMA_DIR") or os.path.join(ROOT, "..", "shared", "schemas")
    if not os.path.isdir(os.path.join(d, "crds")):
        raise RuntimeError(f"no CRD schemas at {d}/crds; set FNOPS_SCHEMA_DIR to shared/schemas")
    return os.path.abspath(d)


def _strict(node):
    if isinstance(node, list):
        return [_strict(x) for x in node]
    if not isinstance(node, dict):
        return node
    out = {k: _strict(v) for k, v in node.items() if not k.startswith("x-kubernetes")}
    if node.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out = {"anyOf": [{"type": "integer"}, {"type": "string"}], **{k: v for k, v in out.items() if k != "anyOf"}}
    if node.get("nullable"):
        t = out.get("type")
        if isinstance(t, str):
            out["type"] = [t, "null"]
        out.pop("nullable", None)
    if (out.get("type") == "object" and "properties" in out and "additionalProperties" not in out
            and not node.get("x-kubernetes-preserve-unknown-fields")):
        out["additionalProperties"] = False
    return out


@functools.lru_cache(maxsize=None)
def crd_schemas() -> dict:
    """(apiVersion, kind) -> strict JSON schema, for every served version of every CRD."""
    out = {}
    crds = os.path.join(schema_dir(), "crds")
    for f in sorted(os.listdir(crds)):
        if not f.endswith(".yaml"):
            continue
        with open(os.path.join(crds, f)) as fh:
            crd = yaml.safe_load(fh)
        group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
        for v in crd["spec"]["versions"]:
            if v.get("served"):
                s = copy.deepcopy(v["schema"]["openAPIV3Schema"])
                # The API server always accepts these at the root, declared or not.
                props = s.setdefault("properties", {})
                props.setdefault("apiVersion", {"type": "string"})
                props.setdefault("kind", {"type": "string"})
                props.setdefault("metadata", {"type": "object"})
                out[(f"{group}/{v['name']}", kind)] = _strict(s)
    return out


LABEL_VALUE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")
QUALIFIED = re.compile(r"([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?")
DNS1123_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")


def check_object_meta(md: dict, where: str) -> list[str]:
    errs = []
    extra = set(md) - {"name", "namespace", "labels", "annotations"}
    if extra:
        errs.append(f"{where}: unexpected metadata fields {sorted(extra)}")
    name = md.get("name", "")
    if not DNS1123_SUBDOMAIN.fullmatch(name) or len(name) > 253:
        errs.append(f"{where}: bad name {name!r}")
    for k, v in (md.get("labels") or {}).items():
        if not QUALIFIED.fullmatch(k) or not isinstance(v, str) or len(v) > 63 or not LABEL_VALUE.fullmatch(v):
            errs.append(f"{where}: bad label {k}={v!r}")
    for k, v in (md.get("annotations") or {}).items():
        if not QUALIFIED.fullmatch(k) or not isinstance(v, str):
            errs.append(f"{where}: bad annotation {k}={v!r} (values must be strings)")
    return errs


def validate(obj: dict) -> list[str]:
    """All schema problems of one rendered object (empty list = valid)."""
    where = f"{obj.get('kind')}/{obj.get('metadata', {}).get('name')}"
    errs = check_object_meta(obj.get("metadata") or {}, where)
    key = (obj.get("apiVersion"), obj.get("kind"))
    schemas = crd_schemas()
    if key in schemas:
        v = jsonschema.Draft7Validator(schemas[key])
        errs += [f"{where}: {'/'.join(map(str, e.absolute_path))}: {e.message}" for e in v.iter_errors(obj)]
        return errs
    if key in (("apps/v1", "Deployment"), ("v1", "Service"), ("v1", "ConfigMap")):
        import kubernetes_validate

        try:
            kubernetes_validate.validate(obj, "1.33.0", strict=True)
        except kubernetes_validate.ValidationError as e:
            errs.append(f"{where}: {str(e).splitlines()[0]}")
        return errs
    return errs + [f"{where}: no schema for {key}"]
