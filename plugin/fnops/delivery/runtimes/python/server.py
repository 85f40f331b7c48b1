"""The fnops function server: runs inside the function image, calls `handle(event, context)`.

Served by uvicorn (HTTP/1.1 via h11) as a bare ASGI app. Understands what Knative delivers:
plain HTTP, and CloudEvents in binary mode (ce-* headers) and structured mode
(application/cloudevents+json) — PingSource, KafkaSource and Triggers all post these.
Only the standard library and uvicorn are needed here; fnops itself is not installed.

Environment: PORT (default 8080), FNOPS_HANDLER (module:function, default handler:handle),
FNOPS_GRACEFUL_SECONDS (default 25: in-flight requests finish after SIGTERM).
"""

from __future__ import annotations

import asyncio
import base64
import functools
import importlib
import inspect
import json
import logging
import os
import sys
import traceback

log = logging.getLogger("fnops.function")
MAX_BODY = int(os.environ.get("FNOPS_MAX_BODY", str(10 * 1024 * 1024)))
CE_JSON = "application/cloudevents+json"


def load_handler(spec: str):
    module, _, name = spec.partition(":")
    sys.path.insert(0, os.getcwd())
    return getattr(importlib.import_module(module), name or "handle")


def _headers(scope) -> dict:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}


def _decode(body: bytes, content_type: str):
    if not body:
        return None
    ct = content_type.split(";")[0].strip().lower()
    if ct == "application/json" or ct.endswith("+json"):
        return json.loads(body)
    if ct.startswith("text/") or ct in ("", "application/x-www-form-urlencoded"):
        return body.decode("utf-8", "replace")
    return body


def parse_request(scope, headers: dict, body: bytes):
    """-> (event, context). Raises ValueError for a malformed CloudEvent."""
    ctype = headers.get("content-type", "")
    context = {"method": scope["method"], "path": scope["path"],
               "query": scope.get("query_string", b"").decode("latin-1"), "headers": headers, "cloudevent": None}
    if ctype.split(";")[0].strip().lower() == CE_JSON:
        ce = json.loads(body or b"{}")
        if not isinstance(ce, dict) or "specversion" not in ce or "id" not in ce or "type" not in ce or "source" not in ce:
            raise ValueError("structured CloudEvent needs specversion, id, source and type")
        if "data_base64" in ce:
            data = _decode(base64.b64decode(ce.pop("data_base64")), ce.get("datacontenttype", ""))
        else:
            data = ce.pop("data", None)
        context["cloudevent"] = ce
        return data, context
    if "ce-specversion" in headers:
        attrs = {k[3:]: v for k, v in headers.items() if k.startswith("ce-")}
        missing = [a for a in ("id", "source", "type") if a not in attrs]
        if missing:
            raise ValueError(f"binary CloudEvent is missing ce-{', ce-'.join(missing)}")
        if ctype:
            attrs["datacontenttype"] = ctype
        context["cloudevent"] = attrs
    return _decode(body, ctype), context


def encode_result(result):
    """-> (status, content-type, body)."""
    status = 200
    if isinstance(result, tuple) and len(result) == 2 and isinstance(result[1], int):
        result, status = result
    if result is None:
        return (204 if status == 200 else status), None, b""
    if isinstance(result, bytes):
        return status, "application/octet-stream", result
    if isinstance(result, str):
        return status, "text/plain; charset=utf-8", result.encode()
    return status, "application/json", json.dumps(result, default=str).encode()


class App:
    def __init__(self, handler):
        self.handler = handler
        self.is_async = inspect.iscoroutinefunction(handler)

    async def __call__(self, scope, receive, send):
        if scope["type"] == "lifespan":
            return await self._lifespan(receive, send)
        if scope["type"] != "http":
            return
        if scope["path"] in ("/healthz", "/readyz") and scope["method"] == "GET":
            return await self._reply(send, 200, "text/plain", b"ok")
        headers = _headers(scope)
        body, too_big = b"", False
        while True:
            msg = await receive()
            body += msg.get("body", b"")
            if len(body) > MAX_BODY:
                too_big = True
                break
            if not msg.get("more_body"):
                break
        if too_big:
            return await self._reply(send, 413, "application/json", b'{"error":"body too large"}')
        try:
            event, context = parse_request(scope, headers, body)
        except (ValueError, UnicodeDecodeError) as e:
            return await self._reply(send, 400, "application/json", json.dumps({"error": str(e)}).encode())
        try:
            if self.is_async:
                result = await self.handler(event, context)
            else:
                loop = asyncio.get_running_loop()
                result = await loop.run_in_executor(None, functools.partial(self.handler, event, context))
            status, ctype, out = encode_result(result)
        except Exception:
            log.error("handler failed on %s %s\n%s", scope["method"], scope["path"], traceback.format_exc())
            return await self._reply(send, 500, "application/json", b'{"error":"internal error"}')
        await self._reply(send, status, ctype, out)

    async def _lifespan(self, receive, send):
        while True:
            msg = await receive()
            if msg["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif msg["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return

    @staticmethod
    async def _reply(send, status, ctype, body):
        headers = [(b"content-length", str(len(body)).encode())]
        if ctype:
            headers.append((b"content-type", ctype.encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def main() -> None:
    import uvicorn

    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    handler = load_handler(os.environ.get("FNOPS_HANDLER", "handler:handle"))
    uvicorn.run(App(handler), host=os.environ.get("HOST", "0.0.0.0"), port=int(os.environ.get("PORT", "8080")),
                lifespan="on", access_log=False, proxy_headers=True,
                timeout_graceful_shutdown=int(os.environ.get("FNOPS_GRACEFUL_SECONDS", "25")))


if __name__ == "__main__":
    main()
