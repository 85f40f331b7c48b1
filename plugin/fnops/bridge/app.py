"""The bridge's HTTP surface as a bare ASGI app (served by uvicorn).

POST /v1/argocd and /v1/alertmanager: authenticated (bearer or HMAC, constant-time),
body size capped, the event committed to the outbox *before* 202. Unknown JSON fields are
ignored; a missing required one is a 400 that names it. A repeat of an event already
accepted is answered 200 and stored nothing.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging

from . import events

log = logging.getLogger("fnops.bridge")


class BridgeApp:
    def __init__(self, config, store, metrics, sinks_for, wake):
        self.config, self.store, self.metrics, self.sinks_for, self.wake = config, store, metrics, sinks_for, wake
        self.ready = lambda: True

    async def __call__(self, scope, receive, send):
        if scope["type"] == "lifespan":
            while True:
                msg = await receive()
                if msg["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif msg["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        path, method = scope["path"], scope["method"]
        status, ctype, body = await self.route(scope, receive, path, method)
        self.metrics.inc("fnops_bridge_http_requests_total", path=path if path.startswith("/v1/") or path in (
            "/healthz", "/readyz", "/metrics") else "other", code=str(status))
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", ctype.encode()), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

    async def route(self, scope, receive, path, method):
        if path == "/healthz":
            return 200, "text/plain", b"ok\n"
        if path == "/readyz":
            ok = self.ready()
            return (200, "text/plain", b"ready\n") if ok else (503, "text/plain", b"not ready\n")
        if path == "/metrics":
            text = await asyncio.get_running_loop().run_in_executor(None, self.metrics.render, self.store)
            return 200, "text/plain; version=0.0.4", text.encode()
        if path not in ("/v1/argocd", "/v1/alertmanager"):
            return _json(404, {"error": "not found"})
        if method != "POST":
            return _json(405, {"error": "method not allowed"})
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        declared = headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > self.config.max_body:
            return _json(413, {"error": f"body larger than {self.config.max_body} bytes"})
        raw = b""
        while True:
            msg = await receive()
            raw += msg.get("body", b"")
            if len(raw) > self.config.max_body:
                return _json(413, {"error": f"body larger than {self.config.max_body} bytes"})
            if not msg.get("more_body"):
                break
        if not self.authorized(headers, raw):
            self.metrics.inc("fnops_bridge_unauthorized_total")
            return _json(401, {"error": "unauthorized"})
        try:
            body = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            return _json(400, {"error": "body is not valid JSON"})
        source = path.rsplit("/", 1)[1]
        try:
            evs = [events.from_argocd(body)] if source == "argocd" else events.from_alertmanager(body)
        except events.BadPayload as e:
            return _json(400, {"error": str(e)})
        except events.UnknownApp as e:
            return _json(422, {"error": str(e)})
        if not evs:
            return _json(200, {"ignored": "no alert carries fnops_function and fnops_environment"})
        results = await asyncio.get_running_loop().run_in_executor(None, self.store.accept, evs, self.sinks_for)
        new = [eid for eid, fresh in results if fresh]
        self.metrics.inc("fnops_bridge_events_accepted_total", len(new), source=source)
        self.metrics.inc("fnops_bridge_events_duplicate_total", len(results) - len(new), source=source)
        if not new:
            return _json(200, {"duplicate": True, "events": [eid for eid, _ in results]})
        self.wake()
        return _json(202, {"accepted": new})

    def authorized(self, headers: dict, raw: bytes) -> bool:
        ok = False
        token = self.config.token
        auth = headers.get("authorization", "")
        if token and auth.startswith("Bearer "):
            ok |= hmac.compare_digest(auth[7:].encode(), token.encode())
        secret = self.config.hmac_secret
        sig = headers.get("x-signature", "")
        if secret and sig.startswith("sha256="):
            want = hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
            ok |= hmac.compare_digest(sig[7:].encode(), want.encode())
        return ok


def _json(status: int, obj) -> tuple[int, str, bytes]:
    return status, "application/json", json.dumps(obj).encode()
