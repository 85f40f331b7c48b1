"""A local GitHub REST API that checks every request against
shared/schemas/apis/github-subset.openapi.json and answers like GitHub does.

Anything outside the spec (unknown path or method, bad query parameter, body that does
not match the schema) is answered 404/422 *and* recorded in `violations`, which tests
assert to be empty: a client that drifts from the real API fails here. Rules the schema
cannot express are enforced too (commit status descriptions over 140 characters → 422,
one open pull request per head branch). Faults can be queued: 5xx, 403/429 + Retry-After.
"""

from __future__ import annotations

import copy
import itertools
import json
import os
import re
import threading
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, urlsplit

import jsonschema

import schemas
from loopback import LoopbackServer


def _openapi_to_jsonschema(node):
    if isinstance(node, list):
        return [_openapi_to_jsonschema(x) for x in node]
    if not isinstance(node, dict):
        return node
    out = {k: _openapi_to_jsonschema(v) for k, v in node.items() if k not in ("example", "examples", "x-github")}
    if node.get("nullable"):
        out.pop("nullable", None)
        if "type" in out:
            out["type"] = [out["type"], "null"] if isinstance(out["type"], str) else out["type"] + ["null"]
        else:
            out = {"anyOf": [out, {"type": "null"}]}
    return out


class Spec:
    def __init__(self):
        with open(os.path.join(schemas.schema_dir(), "apis", "github-subset.openapi.json")) as f:
            self.doc = json.load(f)
        self.components = _openapi_to_jsonschema(self.doc["components"])
        self.routes = []
        for template, item in self.doc["paths"].items():
            rx = re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", template) + "$")
            self.routes.append((rx, template, item))

    def _ref(self, node):
        while isinstance(node, dict) and "$ref" in node:
            name = node["$ref"].split("/")
            node = self.doc[name[1]][name[2]][name[3]]
        return node

    def match(self, method, path):
        for rx, template, item in self.routes:
            m = rx.match(path)
            if m:
                return template, item.get(method.lower()), m.groupdict(), item.get("parameters", [])
        return None, None, {}, []

    def check(self, method, path, query: dict, body) -> list[str]:
        template, op, path_params, shared = self.match(method, path)
        if template is None:
            return [f"{method} {path}: no such path in the API"]
        if op is None:
            return [f"{method} {template}: method not in the API"]
        errs = []
        params = [self._ref(p) for p in shared + op.get("parameters", [])]
        known = {p["name"] for p in params if p["in"] == "query"}
        for name in query:
            if name not in known:
                errs.append(f"{method} {template}: unknown query parameter {name}")
        for p in params:
            schema = _openapi_to_jsonschema(p.get("schema", {}))
            where = {"query": query, "path": path_params}.get(p["in"])
            if where is None or p["name"] not in where:
                if p.get("required") and p["in"] in ("query", "path"):
                    errs.append(f"{method} {template}: missing {p['in']} parameter {p['name']}")
                continue
            value = where[p["name"]]
            if schema.get("type") == "integer":
                if not re.fullmatch(r"-?\d+", value):
                    errs.append(f"{p['name']}={value!r} is not an integer")
                    continue
                value = int(value)
            try:
                jsonschema.validate(value, {**schema, "components": self.components})
            except jsonschema.ValidationError as e:
                errs.append(f"{method} {template}: parameter {p['name']}: {e.message}")
        rb = self._ref(op.get("requestBody")) if op.get("requestBody") else None
        if rb:
            if body is None:
                if rb.get("required"):
                    errs.append(f"{method} {template}: a JSON body is required")
            else:
                schema = _openapi_to_jsonschema(rb["content"]["application/json"]["schema"])
                v = jsonschema.Draft7Validator({**schema, "components": self.components})
                errs += [f"{method} {template}: body {'/'.join(map(str, e.absolute_path))}: {e.message}"
                         for e in v.iter_errors(body)]
        elif body is not None:
            errs.append(f"{method} {template}: takes no body")
        return errs

    def example(self, name):
        return copy.deepcopy(self.doc["components"]["examples"][name]["value"])


class GitHubDouble(LoopbackServer):
    def __init__(self, token="ghp_test_token", owner="acme", repo="functions"):
        self.spec = Spec()
        self.token, self.owner, self.repo = token, owner, repo
        self.violations: list[str] = []
        self.requests: list[tuple] = []
        self.faults: list[tuple] = []  # (status, headers, body) answered before the next requests
        # (METHOD, path template) -> (status, headers, body): how GitHub answers that operation
        # here (a 403 the repository's settings cause), after the request passed the schema.
        self.refusals: dict[tuple, tuple] = {}
        self.pulls: list[dict] = []
        self.comments: list[dict] = []
        self.statuses: list[dict] = []
        self.deployments: list[dict] = []
        self.deployment_statuses: list[dict] = []
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self.hang = 0.0  # seconds every request waits before it is answered (a hanging GitHub)
        self._released = threading.Event()
        super().__init__(self._handler())

    def __exit__(self, *exc):
        self._released.set()  # hanging requests end with the double
        return super().__exit__(*exc)

    # -- answers -------------------------------------------------------------------
    def _urls(self, obj):
        text = json.dumps(obj).replace("https://api.github.com", self.url)
        text = text.replace("octocat/Hello-World", f"{self.owner}/{self.repo}")
        return json.loads(text)

    def handle(self, method, path, query, body, headers):
        if self.hang:
            self._released.wait(self.hang)
        auth = headers.get("authorization", "")
        if auth not in (f"token {self.token}", f"Bearer {self.token}"):
            return 401, {}, {"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"}
        if self.faults:
            return self.faults.pop(0)
        errs = self.spec.check(method, path, query, body)
        if errs:
            self.violations += errs
            return 422, {}, {"message": "Validation Failed", "errors": errs}
        template, _, p, _ = self.spec.match(method, path)
        if (p.get("owner"), p.get("repo")) != (self.owner, self.repo):
            return 404, {}, {"message": "Not Found"}
        key = (method, template)
        if key in self.refusals:
            return self.refusals[key]
        if key == ("GET", "/repos/{owner}/{repo}"):
            repo = self.spec.example("full-repository-default-response")
            repo.update(name=self.repo, full_name=f"{self.owner}/{self.repo}", default_branch="main")
            return 200, {}, self._urls(repo)
        if key == ("GET", "/repos/{owner}/{repo}/pulls"):
            out = [pr for pr in self.pulls if query.get("state", "open") in (pr["state"], "all")]
            if "head" in query:
                out = [pr for pr in out if f"{self.owner}:{pr['head']['ref']}" == query["head"]]
            if "base" in query:
                out = [pr for pr in out if pr["base"]["ref"] == query["base"]]
            return 200, {}, out
        if key == ("POST", "/repos/{owner}/{repo}/pulls"):
            if any(pr["head"]["ref"] == body["head"] and pr["state"] == "open" for pr in self.pulls):
                return 422, {}, {"message": "Validation Failed", "errors": [
                    {"resource": "PullRequest", "code": "custom", "message": f"A pull request already exists for {self.owner}:{body['head']}."}]}
            pr = self._urls(self.spec.example("pull-request"))
            n = next(self._ids)
            pr.update(number=n, state="open", title=body["title"], body=body.get("body"),
                      url=f"{self.url}/repos/{self.owner}/{self.repo}/pulls/{n}",
                      issue_url=f"{self.url}/repos/{self.owner}/{self.repo}/issues/{n}",
                      comments_url=f"{self.url}/repos/{self.owner}/{self.repo}/issues/{n}/comments",
                      html_url=f"https://github.com/{self.owner}/{self.repo}/pull/{n}")
            pr["head"]["ref"], pr["base"]["ref"] = body["head"], body["base"]
            with self._lock:
                self.pulls.append(pr)
            return 201, {}, pr
        if key == ("POST", "/repos/{owner}/{repo}/issues/{issue_number}/comments"):
            n = int(p["issue_number"])
            if not any(pr["number"] == n for pr in self.pulls):
                return 404, {}, {"message": "Not Found"}
            c = self._urls(self.spec.example("issue-comment"))
            c.update(id=next(self._ids), body=body["body"])
            with self._lock:
                self.comments.append({"issue": n, **c})
            return 201, {}, c
        if key == ("POST", "/repos/{owner}/{repo}/statuses/{sha}"):
            if len(body.get("description") or "") > 140:
                return 422, {}, {"message": "Validation Failed", "errors": [
                    {"resource": "Status", "code": "custom", "field": "description",
                     "message": "description is too long (maximum is 140 characters)"}]}
            s = self._urls(self.spec.example("status"))
            s.update(id=next(self._ids), state=body["state"], context=body.get("context", "default"),
                     description=body.get("description"), target_url=body.get("target_url"))
            with self._lock:
                self.statuses.append({"sha": p["sha"], **s})
            return 201, {}, s
        if key == ("GET", "/repos/{owner}/{repo}/commits/{ref}/status"):
            latest = {}
            for s in self.statuses:
                if s["sha"] == p["ref"]:
                    latest[s["context"].lower()] = s
            combined = self._urls(self.spec.example("combined-commit-status"))
            combined.update(sha=p["ref"], statuses=list(latest.values()), total_count=len(latest))
            return 200, {}, combined
        if key == ("POST", "/repos/{owner}/{repo}/deployments"):
            d = self._urls(self.spec.example("deployment-simple-example"))
            d.update(id=next(self._ids), sha=body["ref"], ref=body["ref"], environment=body.get("environment", "production"),
                     payload=body.get("payload", {}), description=body.get("description"))
            d["url"] = f"{self.url}/repos/{self.owner}/{self.repo}/deployments/{d['id']}"
            d["statuses_url"] = d["url"] + "/statuses"
            with self._lock:
                self.deployments.append({"request": body, **d})
            return 201, {}, d
        if key == ("GET", "/repos/{owner}/{repo}/deployments"):
            out = [d for d in self.deployments
                   if all(d.get(k) == query[k] for k in ("sha", "environment", "ref") if k in query)]
            return 200, {}, [{k: v for k, v in d.items() if k != "request"} for d in out]
        if key == ("POST", "/repos/{owner}/{repo}/deployments/{deployment_id}/statuses"):
            did = int(p["deployment_id"])
            if not any(d["id"] == did for d in self.deployments):
                return 404, {}, {"message": "Not Found"}
            s = self._urls(self.spec.example("deployment-status"))
            s.update(id=next(self._ids), state=body["state"], description=body.get("description", ""))
            with self._lock:
                self.deployment_statuses.append({"deployment": did, **s})
            return 201, {}, s
        if key == ("GET", "/repos/{owner}/{repo}/deployments/{deployment_id}/statuses"):
            did = int(p["deployment_id"])
            return 200, {}, [{k: v for k, v in s.items() if k != "deployment"}
                             for s in self.deployment_statuses if s["deployment"] == did]
        return 404, {}, {"message": "Not Found"}

    def _handler(self):
        double = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def _serve(self):
                url = urlsplit(self.path)
                path = url.path[4:] if url.path.startswith("/api/v3") else url.path
                query = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
                n = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(n) if n else b""
                body = None
                if raw:
                    try:
                        body = json.loads(raw)
                    except ValueError:
                        double.violations.append(f"{self.command} {path}: body is not JSON")
                        return self._send(400, {}, {"message": "Problems parsing JSON"})
                headers = {k.lower(): v for k, v in self.headers.items()}
                double.requests.append((self.command, path, query, body))
                status, extra, out = double.handle(self.command, path, query, body, headers)
                self._send(status, extra, out)

            def _send(self, status, extra, out):
                data = json.dumps(out).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json; charset=utf-8")
                self.send_header("content-length", str(len(data)))
                for k, v in extra.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _serve

        return Handler
