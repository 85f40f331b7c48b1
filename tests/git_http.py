"""`git http-backend` behind a loopback HTTP server that demands a token (Basic
x-access-token:<token>, as GitHub takes it). Records every Authorization header seen."""

from __future__ import annotations

import base64
import os
import subprocess
from http.server import BaseHTTPRequestHandler
from urllib.parse import urlsplit

from loopback import LoopbackServer

BACKEND = "/usr/lib/git-core/git-http-backend"


class GitHttpServer(LoopbackServer):
    def __init__(self, root: str, token: str):
        self.root, self.token = root, token
        self.seen_auth: list[str] = []
        super().__init__(self._handler())

    def _handler(self):
        srv = self
        good = "Basic " + base64.b64encode(f"x-access-token:{srv.token}".encode()).decode()

        class H(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def _go(self):
                auth = self.headers.get("Authorization", "")
                srv.seen_auth.append(auth)
                if auth != good:
                    self.send_response(401)
                    self.send_header("WWW-Authenticate", 'Basic realm="git"')
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                url = urlsplit(self.path)
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                env = {"GIT_PROJECT_ROOT": srv.root, "GIT_HTTP_EXPORT_ALL": "1", "PATH_INFO": url.path,
                       "QUERY_STRING": url.query, "REQUEST_METHOD": self.command,
                       "CONTENT_TYPE": self.headers.get("Content-Type", ""), "CONTENT_LENGTH": str(len(body)),
                       "REMOTE_USER": "x-access-token", "REMOTE_ADDR": "127.0.0.1",
                       "GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "http.receivepack", "GIT_CONFIG_VALUE_0": "true",
                       "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
                p = subprocess.run([BACKEND], input=body, env=env, capture_output=True)
                head, _, payload = p.stdout.partition(b"\r\n\r\n")
                status = 200
                headers = []
                for line in head.decode("latin-1").split("\r\n"):
                    k, _, v = line.partition(":")
                    if k.lower() == "status":
                        status = int(v.strip().split()[0])
                    elif k:
                        headers.append((k, v.strip()))
                self.send_response(status)
                for k, v in headers:
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = _go

        return H
