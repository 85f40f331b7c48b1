"""`fnops bridge serve`: wire config, outbox, sinks, lanes and the HTTP app; run uvicorn."""

from __future__ import annotations

import logging
import sys

from . import config as bridge_config
from .app import BridgeApp
from .context import Context
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

    def sinks_for(event):
        return [name for name, s in sinks.items() if s.accepts(event)]

    # A replica's lanes name themselves in the leases they take (PostgreSQL store).
    lane_id = f"{os.uname().nodename}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    lanes = Lanes(sinks, store, ctx, metrics, sinks_for, cfg.delivery, lane_id=lane_id)
    janitor = Janitor(store, cfg.retention.done_after)
    app = BridgeApp(cfg, store, metrics, sinks_for, lanes.wake)
    app.ready = lambda: lanes.alive() and store.healthy()
    lanes.start()
    janitor.start()
    logging.getLogger("fnops.bridge").info("listening on %s:%s, store %s, sinks: %s", cfg.host, cfg.port, store.name,
                                           ", ".join(sinks))
    try:
        uvicorn.run(app, host=cfg.host, port=cfg.port, lifespan="on", access_log=False, log_level="warning",
                    timeout_graceful_shutdown=10)
    finally:
        janitor.stop()
        lanes.stop()
        lanes.join(15)
        store.close()
