"""Real stand-ins for the outside world: a network printer on 127.0.0.1."""
from __future__ import annotations

import socket
import threading
import time


class FakePrinter:
    """A raw-TCP 'Zebra' on 127.0.0.1 that keeps each job it is sent, read to EOF."""

    def __init__(self) -> None:
        """Listen on a free port and serve in a daemon thread."""
        self.server = socket.create_server(("127.0.0.1", 0))
        self.server.settimeout(0.1)
        self.port = self.server.getsockname()[1]
        self.jobs: list[bytes] = []
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        """Accept connections until stopped; each one is a job, read to EOF."""
        while not self._stop.is_set():
            try:
                conn, _ = self.server.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(5)
                data = bytearray()
                while chunk := conn.recv(65536):
                    data.extend(chunk)
                self.jobs.append(bytes(data))

    def wait_for(self, n: int, timeout: float = 5) -> list[bytes]:
        """The jobs, once at least ``n`` arrived (a send returns before the reader finishes)."""
        deadline = time.monotonic() + timeout
        while len(self.jobs) < n and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.jobs

    def close(self) -> None:
        """Stop and close."""
        self._stop.set()
        self.thread.join(5)
        self.server.close()
