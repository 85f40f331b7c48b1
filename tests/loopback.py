"""A threaded HTTP server on 127.0.0.1 that a test starts and always stops (context manager)."""

from __future__ import annotations

import sys
import threading
from http.server import ThreadingHTTPServer


class _Server(ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        # A client that hung up on a held answer (the bridge giving up on a hanging GitHub) is
        # what the test arranged, not an error worth a traceback on stderr.
        if isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            return
        super().handle_error(request, client_address)


class LoopbackServer:
    def __init__(self, handler_cls):
        self.server = _Server(("127.0.0.1", 0), handler_cls)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)
