"""The connection guard: what uvicorn's h11 server leaves open to a slow client.

uvicorn (0.55) times out only an idle keep-alive connection (`timeout_keep_alive`, armed
after a response and disarmed by any byte that arrives), so a client that sends its request
headers slowly, or never finishes them, holds its socket for good (slowloris); and nothing
caps the number of sockets, so enough of them exhaust the process's file descriptors, after
which not even /healthz can be accepted. `limit_concurrency` does not help: once that many
connections are open, slow ones included, it answers 503 to every request — /healthz too —
and closes none of them.

So each connection has a deadline per phase, counted from the start of the phase and never
extended by a trickle of bytes:

    waiting for a request (new, or idle after a response)   http.headerTimeout
    sending a request body                                   http.bodyTimeout

and at most `http.maxConnections` are open. A new connection past the cap closes the oldest
one still waiting for its request (failing that, the oldest still sending a body): a slow
client gives its place to a quick one, so /healthz, Argo CD and Alertmanager, whose requests
arrive at once, get through while slow connections churn. Only when every open connection is
being answered is a new one refused. The phase is h11's own view of the connection
(`their_state`), not a guess from the bytes.
"""

from __future__ import annotations

import collections
import logging
import time

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger("fnops.bridge")

WAITING, BODY, BUSY = "waiting", "body", "busy"
LOG_EVERY = 60.0  # seconds: under attack, one summary line a minute rather than a line per socket


class Guard:
    """The open connections of one server, and their phases (oldest first)."""

    def __init__(self, max_connections: int, header_timeout: float, body_timeout: float, metrics=None):
        self.max_connections = max_connections
        self.timeouts = {WAITING: header_timeout, BODY: body_timeout}
        self.open: set = set()
        self.phases = {WAITING: {}, BODY: {}}  # protocol -> None; dicts keep insertion order
        self.metrics = metrics
        self.cuts: collections.Counter = collections.Counter()
        self.logged_at = float("-inf")
        if metrics is not None:
            metrics.connections.set_function(lambda: len(self.open))

    def protocol_class(self) -> type:
        """uvicorn's h11 protocol, bound to this guard (uvicorn takes a class for `http`)."""
        return type("GuardedH11Protocol", (GuardedH11Protocol,), {"guard": self})

    def admit(self, conn) -> bool:
        if len(self.open) >= self.max_connections:
            victim = next(iter(self.phases[WAITING]), None) or next(iter(self.phases[BODY]), None)
            if victim is None:
                return False
            victim.cut("evicted")
        self.open.add(conn)
        return True

    def forget(self, conn) -> None:
        self.open.discard(conn)
        for members in self.phases.values():
            members.pop(conn, None)

    def count(self, reason: str) -> None:
        if self.metrics is not None:
            self.metrics.connections_cut.labels(reason).inc()
        self.cuts[reason] += 1
        now = time.monotonic()
        if now - self.logged_at >= LOG_EVERY:
            said = ", ".join(f"{r} {n}" for r, n in sorted(self.cuts.items()))
            log.warning("closed %d slow or surplus HTTP connections (%s; %d open, at most %d)",
                        sum(self.cuts.values()), said, len(self.open), self.max_connections)
            self.cuts.clear()
            self.logged_at = now


class GuardedH11Protocol(H11Protocol):
    guard: Guard

    def connection_made(self, transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._phase, self._timer = None, None
        if not self.guard.admit(self):
            self.guard.count("refused")
            transport.abort()
            return
        self._follow()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._follow()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._follow()

    def connection_lost(self, exc) -> None:
        self._enter(None)
        self.guard.forget(self)
        super().connection_lost(exc)

    def cut(self, reason: str) -> None:
        self._enter(None)
        self.guard.forget(self)
        self.guard.count(reason)
        self.transport.abort()  # the socket goes now, unflushed: there is nothing to say to it

    def _follow(self) -> None:
        if self.transport.is_closing() or self not in self.guard.open:
            phase = None
        elif self.conn.their_state is h11.IDLE and self.conn.our_state is h11.IDLE:
            phase = WAITING
        elif self.conn.their_state is h11.SEND_BODY:
            phase = BODY
        else:
            phase = BUSY  # the request is in; the app answers within its own bounds
        if phase != self._phase:
            self._enter(phase)

    def _enter(self, phase) -> None:
        if self._phase in self.guard.phases:
            self.guard.phases[self._phase].pop(self, None)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._phase = phase
        if phase in self.guard.phases:
            self.guard.phases[phase][self] = None
            reason = "header-timeout" if phase == WAITING else "body-timeout"
            self._timer = self.loop.call_later(self.guard.timeouts[phase], self.cut, reason)
