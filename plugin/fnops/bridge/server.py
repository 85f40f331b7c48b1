"""`fnops bridge serve`: wire config, outbox, sinks, lanes and the HTTP app; run uvicorn."""

from __future__ import annotations

import logging
import sys

from . import config as bridge_config
from .app import BridgeApp
from .context import Context
from .guard import Guard
from .metrics import Metrics
from .sinks import build
from .store import open_store
from .worker import Janitor, Lanes


def serve(config_path: str) -> None:
    import os
    import uuid

    import uvicorn

    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    cfg = bridge_config.load(config_path)
    store = open_store(cfg.store_url, lease_seconds=cfg.delivery.lease)
    ctx = Context(cfg, store, cfg.data_dir)
    sinks = build(cfg, ctx)
    metrics = Metrics(store, sinks)
    ctx.metrics = metrics

    def sinks_for(event):
        return [name for name, s in sinks.items() if s.accepts(event)]

    # A replica's lanes name themselves in the leases they take (PostgreSQL store).
    lane_id = f"{os.uname().nodename}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    lanes = Lanes(sinks, store, ctx, metrics, sinks_for, cfg.delivery, lane_id=lane_id)
    janitor = Janitor(store, cfg.retention.done_after)
    app = BridgeApp(cfg, store, metrics, sinks_for, lanes.wake)
    max_connections, backlog = _fd_budget(cfg.http.max_connections)
    guard = Guard(max_connections, cfg.http.header_timeout, cfg.http.body_timeout, metrics)
    app.ready = lambda: lanes.alive() and store.healthy()
    lanes.start()
    janitor.start()
    baker = _baker(store, lanes, sinks)
    catch_up = _catch_up(cfg, lanes)
    logging.getLogger("fnops.bridge").info("listening on %s:%s, store %s, sinks: %s", cfg.host, cfg.port, store.name,
                                           ", ".join(sinks))
    try:
        # limit_concurrency stays off: it counts slow connections too and would answer /healthz 503.
        uvicorn.run(app, host=cfg.host, port=cfg.port, lifespan="on", access_log=False, log_level="warning",
                    timeout_graceful_shutdown=10, http=guard.protocol_class(), timeout_keep_alive=cfg.http.keep_alive,
                    backlog=backlog)
    finally:
        if catch_up:
            catch_up.stop()
        janitor.stop()
        if baker:
            baker.stop()
        lanes.stop()
        lanes.join(15)
        store.close()


def _baker(store, lanes, sinks):
    """The canary's bake timers (bridge/canary.py): bakes that ended while the bridge was
    down act on its first pass."""
    from .canary import Baker

    if "canary" not in sinks:
        return None
    baker = Baker(store, lanes.accept)
    baker.start()
    return baker


def _catch_up(cfg, lanes):
    """What Argo CD sent while the bridge was away, read back before the door opens (so it
    comes first in each function's order), then again every interval (bridge/catchup.py)."""
    from .catchup import CatchUp, KubernetesApplications, in_cluster_url

    c = cfg.catch_up
    if c is None:
        return None
    source = KubernetesApplications(c.url or in_cluster_url(), cfg.origins.application_namespace,
                                    token_file=c.token_file, token=c.token, ca_file=c.ca_file)
    catch_up = CatchUp(source, lanes.accept, cfg.origins, c.interval, c.max_age)
    catch_up.pass_logged()
    catch_up.start()
    return catch_up


# File descriptors the bridge needs besides its HTTP connections: the outbox (SQLite and its
# WAL, or a pool of PostgreSQL connections), git subprocesses' pipes, Slack and GitHub
# clients, the listening socket, stdio and the event loop.
FD_RESERVE = 128
MAX_BACKLOG, MIN_BACKLOG = 2048, 32


def _fd_budget(max_connections: int) -> tuple[int, int]:
    """(connection cap, listen backlog) that fit RLIMIT_NOFILE, raising the soft limit toward
    the hard one first. asyncio accepts up to `backlog` sockets at each wake-up, and about
    three wake-ups pass before the guard has closed the ones it evicts, so a burst holds up to
    cap + 3 × backlog descriptors: both come down until that fits, so a flood of connections
    never leaves the process unable to accept (asyncio then stops accepting for a second)."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = max_connections + FD_RESERVE + 3 * MAX_BACKLOG
    if soft != resource.RLIM_INFINITY and soft < want:
        raised = want if hard == resource.RLIM_INFINITY else min(want, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, raised), hard))
            soft = max(soft, raised)
        except (ValueError, OSError):
            pass
    room = want if soft == resource.RLIM_INFINITY else soft - FD_RESERVE
    cap = max_connections
    if room < cap + 3 * MIN_BACKLOG:
        cap = max(16, room - 3 * MIN_BACKLOG)
        logging.getLogger("fnops.bridge").warning(
            "http.maxConnections %d does not fit the open file limit %d; at most %d connections", max_connections,
            soft, cap)
    return cap, max(MIN_BACKLOG, min(MAX_BACKLOG, (room - cap) // 3))
