"""A throwaway PostgreSQL for the test run (used when TEST_DATABASE_URL is not given)."""
from __future__ import annotations

import atexit
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

# What the migrations write into an empty database (categories, their first checklists), by table:
# tests/conftest.py keeps it here, in a module imported once, and gives it back after each emptying.
MIGRATED_ROWS: dict[str, list[dict]] = {}
PG_BIN = Path(os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_postgres(cmd: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: drop to the postgres user when we are root."""
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


class ThrowawayPostgres:
    """initdb into a temp dir, start on a free port, stop and delete at the end."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="dockhand-pg-"))
        self.port = _free_port()
        self.data = self.dir / "data"

    @property
    def url(self) -> str:
        """SQLAlchemy URL of the `dockhand_test` database."""
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/dockhand_test"

    def start(self) -> ThrowawayPostgres:
        """Create the cluster and the database; raise with the server log on failure."""
        if not (PG_BIN / "initdb").exists():
            raise RuntimeError(f"PostgreSQL binaries not found in {PG_BIN}; set PG_BIN or TEST_DATABASE_URL")
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres")
        run = lambda cmd: subprocess.run(_as_postgres(cmd), cwd="/", check=True, capture_output=True, text=True)  # noqa: E731
        run([str(PG_BIN / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync"])
        opts = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        run([str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.dir / "log"), "-o", opts, "-w", "start"])
        atexit.register(self.stop)  # also when the run is interrupted before fixture teardown
        deadline = time.time() + 20
        while time.time() < deadline:
            probe = subprocess.run(_as_postgres([str(PG_BIN / "psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres",
                                                 "-c", "CREATE DATABASE dockhand_test"]), cwd="/", capture_output=True, text=True)
            if probe.returncode == 0:
                return self
            time.sleep(0.2)
        raise RuntimeError(f"throwaway PostgreSQL did not start: {(self.dir / 'log').read_text()}")

    def restart(self) -> None:
        """Restart the server (fast shutdown: every connection is dropped), with the options it had;
        its output goes to its log, not to a pipe that would keep this call waiting."""
        subprocess.run(_as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.dir / "log"),
                                     "-m", "fast", "-w", "restart"]),
                       cwd="/", check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def keep(self) -> None:
        """Leave the server running after this process exits (`bench/run.py --keep`)."""
        atexit.unregister(self.stop)

    def stop(self) -> None:
        """Stop the server at once and remove its files (safe to call twice)."""
        if not self.data.exists():
            return
        subprocess.run(_as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop"]),
                       cwd="/", capture_output=True)
        shutil.rmtree(self.dir, ignore_errors=True)
