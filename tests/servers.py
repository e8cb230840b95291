"""Dockhand served for real: a gunicorn instance on a free port, as `make run` serves it
(gunicorn.conf.py: threaded workers), for the tests that need more than one app server."""
from __future__ import annotations

import http.client
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.pg import _free_port

ROOT = Path(__file__).resolve().parents[1]


class Gunicorn:
    """One app server on `url`'s database: a gunicorn master with two workers."""

    def __init__(self, url: str, log: Path, env: dict[str, str] | None = None) -> None:
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        full_env = {**os.environ, "DATABASE_URL": url, "SECRET_KEY": "shared-test-secret", "DOCKHAND_ENV": "demo",
                    "DOCKHAND_PHOTO_DIR": str(log.parent / "photos"), **(env or {})}
        self.log = log.open("w")
        self.proc = subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "-w", "2", "-b",
                                      f"127.0.0.1:{self.port}", "--timeout", "60", "wsgi:app"],
                                     cwd=ROOT, env=full_env, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                conn.request("GET", "/health")
                if conn.getresponse().status == 200:
                    return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"gunicorn on {self.port} did not start: {log.read_text()[-2000:]}")

    def workers(self) -> list[int]:
        out = subprocess.run(["pgrep", "-P", str(self.proc.pid)], capture_output=True, text=True).stdout
        return [int(p) for p in out.split()]

    def kill_a_worker(self) -> int:
        pid = self.workers()[0]
        os.kill(pid, signal.SIGKILL)
        return pid

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


def exchange(port: int, method: str, path: str, *, cookies: dict[str, str], headers: dict[str, str],
             body: bytes | str | None = None, timeout: float = 30) -> tuple[int, str]:
    """One request on a new connection, as a browser sends it with `cookies`; the cookies the answer
    sets are kept in `cookies` (one it clears is removed). Returns the status and the body."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    sent = {**headers, "Cookie": "; ".join(f"{k}={v}" for k, v in cookies.items())}
    try:
        conn.request(method, path, body=body, headers=sent)
        resp = conn.getresponse()
        text = resp.read().decode("utf-8", "replace")
    finally:
        conn.close()
    for raw in resp.headers.get_all("Set-Cookie") or []:
        name, _, rest = raw.partition("=")
        value = rest.split(";", 1)[0]
        if value and "01 Jan 1970" not in raw:
            cookies[name.strip()] = value
        else:
            cookies.pop(name.strip(), None)
    return resp.status, text
