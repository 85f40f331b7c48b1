"""`fnops bridge serve`: wire config, outbox, sinks, worker and the HTTP app; run uvicorn."""

from __future__ import annotations

import logging
import os
import sys

from . import config as bridge_config
from .app import BridgeApp
from .context import Context
from .metrics import Metrics
from .sinks import build
from .store import Store
from .worker import Worker


def serve(config_path: str) -> None:
    import uvicorn

    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    cfg = bridge_config.load(config_path)
    store = Store(cfg.store_path)
    data_dir = os.path.dirname(os.path.abspath(cfg.store_path))
    ctx = Context(cfg, store, data_dir)
    sinks = build(cfg, ctx)
    metrics = Metrics()

    def sinks_for(event):
        return [name for name, s in sinks.items() if s.accepts(event)]

    worker = Worker(store, sinks, ctx, metrics, sinks_for)
    app = BridgeApp(cfg, store, metrics, sinks_for, worker.wake)
    app.ready = worker.is_alive
    worker.start()
    logging.getLogger("fnops.bridge").info("listening on %s:%s, sinks: %s", cfg.host, cfg.port, ", ".join(sinks))
    try:
        uvicorn.run(app, host=cfg.host, port=cfg.port, lifespan="on", access_log=False, log_level="warning",
                    timeout_graceful_shutdown=10)
    finally:
        worker.stop()
        worker.join(15)
        store.close()
