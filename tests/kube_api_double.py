"""The Kubernetes API of Argo CD's cluster, for Application objects only, on 127.0.0.1.

What a request may be comes from the Application CRD (shared/schemas/crds/
argocd-application-crd.yaml): the group, the served versions, the plural, that it is
namespaced, and the list kind name the path and the answer; the openAPIV3Schema is what
every object it holds must satisfy (refused on `put`, so a test cannot feed the bridge an
Application the API server would not store). The list options it accepts are the ones a
list of a custom resource takes (labelSelector with =, ==, != and existence requirements,
limit, continue). Anything else — another method, path, version, option, a bad selector, a
continue token it did not issue, a missing or wrong bearer token — is a violation, recorded
and answered as the API server would (400/401/404/405).
"""

from __future__ import annotations

import json
import os
import re
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler

import jsonschema
import yaml

import schemas
from loopback import LoopbackServer

QUALIFIED = re.compile(r"([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?")
VALUE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")
LIST_OPTIONS = {"labelSelector", "limit", "continue"}


def crd() -> dict:
    with open(os.path.join(schemas.schema_dir(), "crds", "argocd-application-crd.yaml")) as f:
        return yaml.safe_load(f)


def parse_selector(text: str) -> list[tuple[str, str, str | None]]:
    """[(key, op, value)] for equality-based requirements; ValueError if it is not one."""
    out = []
    for part in text.split(","):
        part = part.strip()
        m = re.fullmatch(r"(!?)([^=!\s]+)(?:\s*(==|=|!=)\s*(\S*))?", part)
        if not m or not QUALIFIED.fullmatch(m.group(2)) or (m.group(1) and m.group(3)):
            raise ValueError(f"unable to parse requirement: {part!r}")
        if m.group(3) and not VALUE.fullmatch(m.group(4) or ""):
            raise ValueError(f"invalid label value: {m.group(4)!r}")
        op = "!" if m.group(1) else ("exists" if not m.group(3) else ("!=" if m.group(3) == "!=" else "="))
        out.append((m.group(2), op, m.group(4)))
    return out


def matches(labels: dict, requirements) -> bool:
    for key, op, value in requirements:
        if op == "exists" and key not in labels or op == "!" and key in labels:
            return False
        if op == "=" and labels.get(key) != value or op == "!=" and labels.get(key) == value:
            return False
    return True


class KubeApiDouble(LoopbackServer):
    def __init__(self, token: str):
        spec = crd()["spec"]
        self.group, self.plural, self.list_kind = spec["group"], spec["names"]["plural"], spec["names"]["listKind"]
        assert spec["scope"] == "Namespaced"
        self.versions = [v["name"] for v in spec["versions"] if v.get("served")]
        self.validator = jsonschema.Draft7Validator(schemas.crd_schemas()[(f"{self.group}/{self.versions[0]}",
                                                                           spec["names"]["kind"])])
        self.token = token
        self.objects: dict = {}  # (namespace, name) -> object
        self.requests: list[dict] = []
        self.violations: list[str] = []
        self.down = False  # answer 503, as an API server that cannot reach etcd
        self._continues: dict = {}
        self._rv = 1000
        self._lock = threading.Lock()
        super().__init__(self._handler())

    def put(self, obj: dict) -> None:
        errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in self.validator.iter_errors(obj)]
        if errors:
            raise AssertionError(f"the API server would not store {obj['metadata']['name']}: {errors[:3]}")
        with self._lock:
            self._rv += 1
            obj = json.loads(json.dumps(obj))
            obj["metadata"]["resourceVersion"] = str(self._rv)
            self.objects[(obj["metadata"]["namespace"], obj["metadata"]["name"])] = obj

    def list(self, path: str, query: dict, auth: str) -> tuple[int, dict]:
        self.requests.append({"path": path, "query": query})
        if auth != f"Bearer {self.token}":
            return 401, _status(401, "Unauthorized", "Unauthorized")
        m = re.fullmatch(r"/apis/([^/]+)/([^/]+)/namespaces/([^/]+)/([^/]+)", path)
        if not m or m.group(1) != self.group or m.group(4) != self.plural or m.group(2) not in self.versions:
            self.violations.append(f"GET {path}: not a path of the Application CRD")
            return 404, _status(404, "NotFound", "the server could not find the requested resource")
        unknown = set(query) - LIST_OPTIONS
        if unknown:
            self.violations.append(f"GET {path}: list options {sorted(unknown)} not used by a plain list")
            return 400, _status(400, "BadRequest", f"unknown options {sorted(unknown)}")
        try:
            requirements = parse_selector(query["labelSelector"]) if "labelSelector" in query else []
            limit = int(query.get("limit", "0"))
            if limit < 0:
                raise ValueError("limit must not be negative")
        except ValueError as e:
            self.violations.append(f"GET {path}: {e}")
            return 400, _status(400, "BadRequest", str(e))
        if self.down:
            return 503, _status(503, "ServiceUnavailable", "etcdserver: request timed out")
        with self._lock:
            if "continue" in query:
                if query["continue"] not in self._continues:
                    self.violations.append(f"GET {path}: a continue token this server did not issue")
                    return 410, _status(410, "Expired", "the provided continue parameter is too old")
                items, start = self._continues.pop(query["continue"])
            else:
                items = [o for (ns, _), o in sorted(self.objects.items())
                         if ns == m.group(3) and matches(o["metadata"].get("labels") or {}, requirements)]
                start = 0
            page = items[start:start + limit] if limit else items[start:]
            meta = {"resourceVersion": str(self._rv)}
            if limit and start + limit < len(items):
                token = f"c{len(self.requests)}"
                self._continues[token] = (items, start + limit)
                meta["continue"] = token
        return 200, {"apiVersion": f"{self.group}/{m.group(2)}", "kind": self.list_kind, "metadata": meta,
                     "items": page}

    def _handler(self):
        double = self

        class H(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def _answer(self, code, body):
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                url = urllib.parse.urlsplit(self.path)
                query = dict(urllib.parse.parse_qsl(url.query, keep_blank_values=True))
                if "application/json" not in self.headers.get("accept", ""):
                    double.violations.append(f"GET {url.path}: Accept is not application/json")
                self._answer(*double.list(url.path, query, self.headers.get("authorization", "")))

            def _refuse(self):
                double.violations.append(f"{self.command} {self.path}: the catch-up only lists")
                self._answer(405, _status(405, "MethodNotAllowed", "method not allowed"))

            do_POST = do_PUT = do_PATCH = do_DELETE = _refuse

        return H


def _status(code: int, reason: str, message: str) -> dict:
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message,
            "reason": reason, "code": code}
