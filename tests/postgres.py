"""A real PostgreSQL server for tests, from the OS packages: initdb into a temp dir and
pg_ctl on 127.0.0.1 (no system service). As root (CI), the server runs as the `postgres`
user, since PostgreSQL refuses to run as root. Every server a test starts, it stops."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import time

from containers import free_port


def bindir() -> str | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return os.path.dirname(found[-1]) if found else None


def missing() -> str | None:
    if bindir() is None:
        return "PostgreSQL server binaries (apt-get install postgresql)"
    try:
        import psycopg  # noqa: F401
        import psycopg_pool  # noqa: F401
    except ImportError:
        return "psycopg 3 with psycopg_pool"
    return None


class PostgresServer:
    def __init__(self):
        self.bin = bindir()
        self.root = tempfile.mkdtemp(prefix="fnops-pg-")  # in /tmp: the postgres user can reach it
        self.data, self.sock = os.path.join(self.root, "data"), os.path.join(self.root, "sock")
        os.makedirs(self.sock)
        self.user = None
        if os.geteuid() == 0:
            self.user = "postgres"
            pw = pwd.getpwnam(self.user)
            for d in (self.root, self.sock):
                os.chown(d, pw.pw_uid, pw.pw_gid)
        self.port = free_port()
        self._run("initdb", "-D", self.data, "-A", "trust", "-U", "fnops", "--no-sync", "-E", "UTF8")
        self.start()

    @property
    def dsn(self) -> str:
        return f"postgresql://fnops@127.0.0.1:{self.port}/postgres"

    def _run(self, tool: str, *args: str, check: bool = True):
        cmd = [os.path.join(self.bin, tool), *args]
        if self.user:
            cmd = ["runuser", "-u", self.user, "--", *cmd]
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        if check and p.returncode:
            raise RuntimeError(f"{tool} failed: {p.stderr.strip() or p.stdout.strip()}")
        return p

    def start(self) -> None:
        opts = f"-p {self.port} -k {self.sock} -c listen_addresses=127.0.0.1 -c max_connections=100"
        self._run("pg_ctl", "-D", self.data, "-l", os.path.join(self.root, "log"), "-o", opts, "-w", "-t", "30",
                  "start")
        deadline = time.monotonic() + 20
        while self._run("pg_isready", "-h", "127.0.0.1", "-p", str(self.port), check=False).returncode != 0:
            if time.monotonic() > deadline:
                raise RuntimeError("postgres did not become ready")
            time.sleep(0.1)

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", self.data, "-m", mode, "-w", "-t", "30", "stop", check=False)

    def reset(self) -> None:
        """An empty database again (between tests sharing one server)."""
        import psycopg

        with psycopg.connect(self.dsn, autocommit=True) as conn:
            conn.execute("DROP SCHEMA public CASCADE")
            conn.execute("CREATE SCHEMA public")

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)
