"""The fnops function server: runs inside the function image, calls `handle(event, context)`.

Served by uvicorn (HTTP/1.1 via h11) as a bare ASGI app. Understands what Knative delivers:
plain HTTP, and CloudEvents in binary mode (ce-* headers) and structured mode
(application/cloudevents+json) — PingSource, KafkaSource and Triggers all post these.
Only the standard library and uvicorn are needed here; fnops itself is not installed.

The handler contract
--------------------
    def handle(event, context): ...        # or `async def`; FNOPS_HANDLER names it

`event` is the request body, decoded by its content type: JSON (application/json or any
`+json`) -> the parsed value; text/*, form data or no content type -> str; anything else
-> bytes; no body -> None. For a CloudEvent, `event` is its data.

`context` is a plain dict:
    method      "GET", "POST", …
    path        "/orders/7" (no query)
    query       the raw query string, "a=1&b=2" ("" when there is none)
    params      the query parsed, {"a": "1", "b": "2"} (a repeated name keeps its last value)
    headers     the request headers, names in lower case: {"content-type": "application/json", …}
    cloudevent  None for a plain request; for a CloudEvent (either mode) its attributes:
                {"specversion", "id", "source", "type", "time", "subject", "datacontenttype",
                 and any extensions}

What `handle` returns becomes the reply:
    None                        204 No Content
    dict, list, number, bool    200 application/json
    str                         200 text/plain; charset=utf-8
    bytes                       200 application/octet-stream
    (body, status)              that status, e.g. ({"error": "no such order"}, 404)
    (body, status, headers)     and those headers (a dict; a content-type here wins)
    a dict with "specversion"   a CloudEvent reply, sent in binary mode: its attributes as
                                ce-* headers, its `data` as the body. `type` and `source` are
                                required, `id` defaults to a new UUID, `datacontenttype` to
                                what `data` is (JSON, text or bytes; `data_base64` for bytes
                                written as base64). A Trigger's reply goes back to the broker,
                                a sink's to the next step. It may sit in a tuple as above.
    an exception                500 {"error":"internal error"}; the traceback is logged, never sent.

Environment: PORT (default 8080), HOST (default 0.0.0.0), FNOPS_HANDLER (module:function,
default handler:handle), FNOPS_GRACEFUL_SECONDS (default 25: in-flight requests finish
after SIGTERM), FNOPS_MAX_BODY (bytes, default 10 MiB), FNOPS_ACCESS_LOG=1 (a log line per
request). `fnops run` also sets FNOPS_LISTEN_FD (serve a socket it holds, so a reload never
refuses a connection) and FNOPS_READY_FD (where to say "ready", or why the handler did not
load); images never set these.
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
import re
import sys
import time
import traceback
import uuid
from urllib.parse import parse_qsl, quote, unquote

log = logging.getLogger("fnops.function")
access = logging.getLogger("fnops.access")
MAX_BODY = int(os.environ.get("FNOPS_MAX_BODY", str(10 * 1024 * 1024)))
CE_JSON = "application/cloudevents+json"
CE_REQUIRED = ("type", "source")
# CloudEvents 1.0: attribute names are lower-case ASCII letters and digits (20 at most is
# what the spec asks producers to keep to).
CE_NAME = re.compile(r"[a-z0-9]{1,20}")


def load_handler(spec: str):
    module, _, name = spec.partition(":")
    sys.path.insert(0, os.getcwd())
    mod = importlib.import_module(module)
    try:
        return getattr(mod, name or "handle")
    except AttributeError:
        raise LookupError(f"module '{module}' has no function '{name or 'handle'}' (FNOPS_HANDLER={spec})") from None


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
    query = scope.get("query_string", b"").decode("latin-1")
    context = {"method": scope["method"], "path": scope["path"], "query": query, "params": dict(parse_qsl(query)),
               "headers": headers, "cloudevent": None}
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
        # The HTTP binding percent-encodes what a header cannot carry (spaces, '"', '%', non-ASCII).
        attrs = {k[3:]: unquote(v) for k, v in headers.items() if k.startswith("ce-")}
        missing = [a for a in ("id", "source", "type") if a not in attrs]
        if missing:
            raise ValueError(f"binary CloudEvent is missing ce-{', ce-'.join(missing)}")
        if ctype:
            attrs["datacontenttype"] = ctype
        context["cloudevent"] = attrs
    return _decode(body, ctype), context


class ReplyError(Exception):
    """The handler returned something that cannot be sent (its bug: a 500, logged)."""


def _body(data, content_type: str | None):
    """-> (content type, bytes) of a reply body."""
    if isinstance(data, bytes):
        return content_type or "application/octet-stream", data
    if isinstance(data, str):
        return content_type or "text/plain; charset=utf-8", data.encode()
    return content_type or "application/json", json.dumps(data, default=str).encode()


def _ce_header_value(value) -> str:
    if isinstance(value, bool):
        value = "true" if value else "false"
    elif not isinstance(value, (str, int)):
        raise ReplyError(f"CloudEvent attribute value {value!r} is not a string, integer or boolean")
    # Printable ASCII but space, '"' and '%' as they are; the rest percent-encoded (UTF-8).
    return quote(str(value), safe="".join(chr(c) for c in range(0x21, 0x7f) if chr(c) not in '"%'))


def cloudevent_reply(ce: dict):
    """A CloudEvent dict -> (headers, content type, body) in binary mode."""
    ce = dict(ce)
    if ce.get("specversion") != "1.0":
        raise ReplyError(f"CloudEvent reply: specversion must be \"1.0\", not {ce.get('specversion')!r}")
    missing = [a for a in CE_REQUIRED if not ce.get(a)]
    if missing:
        raise ReplyError(f"CloudEvent reply needs {' and '.join(missing)}")
    ce.setdefault("id", str(uuid.uuid4()))
    ctype = ce.pop("datacontenttype", None)
    if "data_base64" in ce:
        if "data" in ce:
            raise ReplyError("CloudEvent reply has both data and data_base64")
        try:
            data = base64.b64decode(ce.pop("data_base64"), validate=True)
        except (ValueError, TypeError) as e:
            raise ReplyError(f"CloudEvent reply: data_base64 is not base64 ({e})") from None
    else:
        data = ce.pop("data", None)
    headers = {}
    for name, value in ce.items():
        if not isinstance(name, str) or not CE_NAME.fullmatch(name):
            raise ReplyError(f"CloudEvent attribute name {name!r}: lower-case letters and digits, at most 20")
        if value is not None:
            headers[f"ce-{name}"] = _ce_header_value(value)
    if data is None:
        return headers, ctype, b""
    ctype, body = _body(data, ctype)
    return headers, ctype, body


def encode_result(result):
    """-> (status, headers dict, content type or None, body bytes)."""
    status, extra = 200, {}
    if isinstance(result, tuple) and len(result) in (2, 3) and isinstance(result[1], int) \
            and not isinstance(result[1], bool):
        if len(result) == 3:
            result, status, extra = result
            if not isinstance(extra, dict):
                raise ReplyError(f"reply headers must be a dict, not {type(extra).__name__}")
        else:
            result, status = result
    if not 100 <= status <= 599:
        raise ReplyError(f"reply status {status} is not an HTTP status (100-599)")
    headers, ctype, body = {}, None, b""
    if isinstance(result, dict) and "specversion" in result:
        headers, ctype, body = cloudevent_reply(result)
    elif result is None:
        status = 204 if status == 200 else status
    else:
        ctype, body = _body(result, None)
    for k, v in extra.items():
        if not isinstance(k, str) or not isinstance(v, str) or any(c in k + v for c in "\r\n\0"):
            raise ReplyError(f"reply header {k!r}: names and values are strings without line breaks")
        if k.lower() == "content-type":
            ctype = v
        elif k.lower() != "content-length":
            headers[k.lower()] = v
    return status, headers, ctype, body


class App:
    def __init__(self, handler, on_ready=None):
        self.handler = handler
        self.is_async = inspect.iscoroutinefunction(handler)
        self.on_ready = on_ready
        self.access_log = os.environ.get("FNOPS_ACCESS_LOG") == "1"

    async def __call__(self, scope, receive, send):
        if scope["type"] == "lifespan":
            return await self._lifespan(receive, send)
        if scope["type"] != "http":
            return
        started = time.monotonic()
        status, headers, ctype, body, ce = await self._answer(scope, receive)
        await self._reply(send, status, ctype, body, headers)
        if self.access_log and ce is not False:
            query = scope.get("query_string", b"").decode("latin-1")
            what = f" ce-type={ce.get('type')}" if ce else ""
            access.info("%s %s%s %d %.1fms%s", scope["method"], scope["path"], f"?{query}" if query else "", status,
                        (time.monotonic() - started) * 1000, what)

    async def _answer(self, scope, receive):
        """-> (status, headers, content type, body, the request's CloudEvent attributes; False
        for a health probe, which the access log leaves out)."""
        if scope["path"] in ("/healthz", "/readyz") and scope["method"] == "GET":
            return 200, {}, "text/plain", b"ok", False  # probes: answered, not logged
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
            return 413, {}, "application/json", b'{"error":"body too large"}', None
        try:
            event, context = parse_request(scope, headers, body)
        except (ValueError, UnicodeDecodeError) as e:
            return 400, {}, "application/json", json.dumps({"error": str(e)}).encode(), None
        ce = context["cloudevent"]
        try:
            if self.is_async:
                result = await self.handler(event, context)
            else:
                loop = asyncio.get_running_loop()
                result = await loop.run_in_executor(None, functools.partial(self.handler, event, context))
            status, out_headers, ctype, out = encode_result(result)
        except ReplyError as e:
            log.error("handler reply on %s %s cannot be sent: %s", scope["method"], scope["path"], e)
            return 500, {}, "application/json", b'{"error":"internal error"}', ce
        except Exception:
            log.error("handler failed on %s %s\n%s", scope["method"], scope["path"], traceback.format_exc())
            return 500, {}, "application/json", b'{"error":"internal error"}', ce
        return status, out_headers, ctype, out, ce

    async def _lifespan(self, receive, send):
        while True:
            msg = await receive()
            if msg["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif msg["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return

    @staticmethod
    async def _reply(send, status, ctype, body, headers=None):
        out = [(b"content-length", str(len(body)).encode())]
        if ctype:
            out.append((b"content-type", ctype.encode("latin-1")))
        out += [(k.encode("latin-1"), v.encode("latin-1")) for k, v in (headers or {}).items()]
        await send({"type": "http.response.start", "status": status, "headers": out})
        await send({"type": "http.response.body", "body": body})


def _load_failure(e: BaseException) -> dict:
    """What `fnops run` needs to say in one line why the handler did not load."""
    out = {"type": type(e).__name__, "message": str(e)}
    if isinstance(e, SyntaxError):
        out.update(message=e.msg, file=e.filename, line=e.lineno, col=e.offset)
        return out
    if isinstance(e, ModuleNotFoundError) and e.name:
        out["module"] = e.name
    here = os.getcwd() + os.sep
    frames = [f for f in traceback.extract_tb(e.__traceback__) if f.filename.startswith(here)]
    if frames:
        out.update(file=frames[-1].filename, line=frames[-1].lineno)
    return out


def _say_ready(fd: int | None, what: dict | None = None) -> None:
    if fd is None:
        return
    try:
        os.write(fd, (json.dumps(what) if what else "ready").encode() + b"\n")
        os.close(fd)
    except OSError:
        pass  # whoever asked has gone


def main() -> None:
    import socket

    import uvicorn

    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    # fnops run's handshake is not the handler's business: its environment is the image's.
    ready = os.environ.pop("FNOPS_READY_FD", None)
    listen = os.environ.pop("FNOPS_LISTEN_FD", None)
    ready_fd = int(ready) if ready else None
    try:
        handler = load_handler(os.environ.get("FNOPS_HANDLER", "handler:handle"))
    except Exception as e:
        _say_ready(ready_fd, {"error": _load_failure(e)})
        raise

    class Server(uvicorn.Server):
        async def startup(self, sockets=None):
            await super().startup(sockets=sockets)
            if self.started:
                _say_ready(ready_fd)

        async def shutdown(self, sockets=None):
            if listen:
                # The socket is shared with the server that replaces this one: stop accepting
                # first, and let a connection accepted just before send its request, which is
                # then served; uvicorn would close it unanswered as idle.
                for server in self.servers:
                    server.close()
                await asyncio.sleep(0.1)
            await super().shutdown(sockets=sockets)

    config = uvicorn.Config(App(handler), host=os.environ.get("HOST", "0.0.0.0"),
                            port=int(os.environ.get("PORT", "8080")), lifespan="on", access_log=False,
                            proxy_headers=True,
                            timeout_graceful_shutdown=int(os.environ.get("FNOPS_GRACEFUL_SECONDS", "25")))
    server = Server(config)
    try:
        server.run(sockets=[socket.socket(fileno=int(listen))] if listen else None)
    except KeyboardInterrupt:
        pass
    if not server.started:
        sys.exit(3)  # as uvicorn.run does when it could not start


if __name__ == "__main__":
    main()
