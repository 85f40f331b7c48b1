"""The bridge's HTTP surface as a bare ASGI app (served by uvicorn).

POST /v1/argocd, /v1/alertmanager and /v1/keda (KEDA's CloudEvents, bridge/scaling.py; also
/v1/keda/<token>, as KEDA's sink sends no headers): authenticated (bearer or HMAC,
constant-time; a door with its own token accepts only that token), body size capped, strict JSON with typed and
bounded fields (`door`), the event committed to the outbox *before* 202. Unknown JSON fields
are ignored; a missing or mistyped one is a 400 that names it (never echoing its value). An
event whose origin is not the function's own Application or namespace (`origin`) is answered
200, logged with the reason and stored nowhere. A repeat of an event already accepted is
answered 200 and stores nothing. When the outbox holds more undelivered events than
`retention.maxPendingEvents`, new ones get 503 (the senders retry).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging

from . import door, events, scaling

log = logging.getLogger("fnops.bridge")


class BridgeApp:
    def __init__(self, config, store, metrics, sinks_for, wake):
        self.config, self.store, self.metrics, self.sinks_for, self.wake = config, store, metrics, sinks_for, wake
        self.origins = config.origins
        self.ready = lambda: True
        self._pending = (0, -1.0)  # (undelivered events, when counted): backpressure, refreshed each second
        sc = getattr(config, "scaling", None)
        self.coalescer = scaling.Coalescer(store, sc.max_per_hour if sc else scaling.DEFAULT_MAX_PER_HOUR)

    async def __call__(self, scope, receive, send):
        if scope["type"] == "lifespan":
            flusher = None
            while True:
                msg = await receive()
                if msg["type"] == "lifespan.startup":
                    flusher = asyncio.get_running_loop().create_task(self._flush_scaling())
                    await send({"type": "lifespan.startup.complete"})
                elif msg["type"] == "lifespan.shutdown":
                    if flusher:
                        flusher.cancel()
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        path, method = scope["path"], scope["method"]
        answer = await self.route(scope, receive, path, method)
        if answer is None:
            return
        status, ctype, body, *close = answer
        self.metrics.request(path, status)
        headers = [(b"content-type", ctype.encode()), (b"content-length", str(len(body)).encode())]
        if close:  # answered before the body was read: the connection cannot carry another request
            headers.append((b"connection", b"close"))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def route(self, scope, receive, path, method):
        if path == "/healthz":
            return 200, "text/plain", b"ok\n"
        if path == "/readyz":
            ok = await asyncio.get_running_loop().run_in_executor(None, self.ready)
            return (200, "text/plain", b"ready\n") if ok else (503, "text/plain", b"not ready\n")
        if path == "/metrics":
            text = await asyncio.get_running_loop().run_in_executor(None, self.metrics.render)
            return 200, "text/plain; version=0.0.4; charset=utf-8", text
        in_path = self.path_token(path)
        if in_path is not None:
            if not in_path:
                self.metrics.unauthorized.inc()
                return _json(401, {"error": "unauthorized"}, close=True)
            path = "/v1/keda"
        if path not in ("/v1/argocd", "/v1/alertmanager", "/v1/keda"):
            return _json(404, {"error": "not found"})
        if method != "POST":
            return _json(405, {"error": "method not allowed"})
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        source = path.rsplit("/", 1)[1]
        # Only an HMAC signature needs the body: a request without one is judged by its
        # header, so no one without a token makes the bridge wait for a body.
        if not in_path and not self.may_sign(headers, source) and not self.authorized(headers, b"", source):
            self.metrics.unauthorized.inc()
            return _json(401, {"error": "unauthorized"}, close=True)
        declared = headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > self.config.max_body:
            return _json(413, {"error": f"body larger than {self.config.max_body} bytes"}, close=True)
        raw = b""
        while True:
            msg = await receive()
            if msg["type"] == "http.disconnect":  # the client left (or the guard cut it off): nothing to answer
                return None
            raw += msg.get("body", b"")
            if len(raw) > self.config.max_body:
                return _json(413, {"error": f"body larger than {self.config.max_body} bytes"}, close=True)
            if not msg.get("more_body"):
                break
        if not in_path and not self.authorized(headers, raw, source):
            self.metrics.unauthorized.inc()
            return _json(401, {"error": "unauthorized"})
        ignored: list[str] = []
        try:
            if source == "keda":
                evs = scaling.from_keda(headers, raw, self.origins, ignored)
            elif source == "argocd":
                body = door.parse(raw)
                evs = [events.from_argocd(body)]
                why = self.origins.argocd(evs[0])
                if why:
                    evs, ignored = [], [why]
            else:
                body = door.parse(raw)
                evs = events.from_alertmanager(body, self.origins.alert, ignored)
                evs += scaling.from_alertmanager(body, self.origins.alert, ignored)
        except door.BadPayload as e:
            return _json(400, {"error": str(e)})
        except events.UnknownApp as e:
            return _json(422, {"error": str(e)})
        for why in ignored:
            log.warning("ignored: %s", why)
        if ignored:
            self.metrics.ignored.labels(source).inc(len(ignored))
        if not evs:
            return _json(200, {"ignored": ignored[0] if ignored else
                               "no alert carries fnops_function and fnops_environment"})
        loop = asyncio.get_running_loop()
        try:
            if await loop.run_in_executor(None, self._pending_events) >= self.config.retention.max_pending_events:
                return _json(503, {"error": "outbox full; retry later"})
            if any(e.get("source") == "scaling" for e in evs):
                # scaling transitions: state changes only, bounded per hour (bridge/scaling.py)
                results, told = await loop.run_in_executor(
                    None, self.coalescer.accept, evs, lambda kept: self.store.accept(kept, self.sinks_for))
                if not results:
                    return _json(200, {"coalesced": told})
            else:
                results = await loop.run_in_executor(None, self.store.accept, evs, self.sinks_for)
        except Exception:
            log.exception("outbox unavailable; event not accepted")
            return _json(503, {"error": "outbox unavailable; retry later"})
        new = [eid for eid, fresh in results if fresh]
        self.metrics.accepted.labels(source).inc(len(new))
        self.metrics.duplicates.labels(source).inc(len(results) - len(new))
        if not new:
            return _json(200, {"duplicate": True, "events": [eid for eid, _ in results]})
        self.wake()
        return _json(202, {"accepted": new})

    async def _flush_scaling(self, every: float = 30.0) -> None:
        """Once a minute or so: the counts of suppressed scaling transitions whose hour is over."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(every)
            try:
                if await loop.run_in_executor(None, self.coalescer.flush,
                                              lambda evs: self.store.accept(evs, self.sinks_for)):
                    self.wake()
            except Exception:  # the outbox is down: the count stays, the next round tries again
                log.exception("scaling: could not write a suppressed count; will try again")

    def _pending_events(self) -> int:
        """The count is a scan of the outbox; one a second bounds the store without costing each POST."""
        import time

        count, at = self._pending
        if time.monotonic() - at > 1.0:
            count, at = self.store.pending_events(), time.monotonic()
        self._pending = (count + 1, at)  # counting what this request is about to add
        return count

    def path_token(self, path: str) -> bool | None:
        """/v1/keda/<token>: True when it is the configured `auth.kedaPathTokenEnv` (compared
        in constant time), False for another token; None for any other path."""
        if not path.startswith("/v1/keda/"):
            return None
        sc = getattr(self.config, "scaling", None)
        want = sc.path_token if sc else None
        return bool(want) and hmac.compare_digest(path[len("/v1/keda/"):].encode(), want.encode())

    def may_sign(self, headers: dict, source: str) -> bool:
        """The request offers an HMAC signature this door would check (so its body is needed)."""
        return (bool(self.config.hmac_secret) and not self.config.tokens.get(source)
                and headers.get("x-signature", "").startswith("sha256="))

    def authorized(self, headers: dict, raw: bytes, source: str) -> bool:
        """A door with its own token opens to that token only; the others to the shared
        bearer token or an HMAC signature made with the shared secret."""
        ok = False
        token = self.config.tokens.get(source) or self.config.token
        auth = headers.get("authorization", "")
        if token and auth.startswith("Bearer "):
            ok |= hmac.compare_digest(auth[7:].encode(), token.encode())
        if self.may_sign(headers, source):
            want = hmac.new(self.config.hmac_secret.encode(), raw, hashlib.sha256).hexdigest()
            ok |= hmac.compare_digest(headers["x-signature"][7:].encode(), want.encode())
        return ok


def _json(status: int, obj, close: bool = False) -> tuple:
    return (status, "application/json", json.dumps(obj).encode()) + ((True,) if close else ())
