"""Real stand-ins for the outside world: a network printer on 127.0.0.1."""
from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator


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


def closed_port() -> int:
    """A port on 127.0.0.1 where nothing listens (connections are refused)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def unresponsive_port() -> Iterator[int]:
    """A port whose accept queue is full, so a new connection hangs until the sender times out."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    port = server.getsockname()[1]
    fillers = []
    for _ in range(4):
        filler = socket.socket()
        filler.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            filler.connect(("127.0.0.1", port))
        fillers.append(filler)
    time.sleep(0.1)
    try:
        yield port
    finally:
        for filler in fillers:
            filler.close()
        server.close()


class LosingProxy:
    """A reverse proxy in front of the app (WSGI middleware) that loses answers on request: the
    next request planned with `lose_next` is handled in full (its transaction commits), then the
    client gets a bare 502 page, as from a proxy whose upstream connection dropped at COMMIT."""

    LOST_PAGE = b"<html><body><h1>502 Bad Gateway</h1></body></html>"

    def __init__(self, app) -> None:  # type: ignore[no-untyped-def]
        self.app = app
        self.planned: list[tuple[str, str]] = []
        self.lost: list[str] = []  # the statuses the app answered and the client never saw

    def lose_next(self, method: str, path: str) -> None:
        """Lose the answer to the next `method` request for `path`."""
        self.planned.append((method, path))

    def __call__(self, environ, start_response):  # type: ignore[no-untyped-def]
        request = (environ["REQUEST_METHOD"], environ["PATH_INFO"])
        if request not in self.planned:
            return self.app(environ, start_response)
        self.planned.remove(request)
        answered: list[str] = []
        body = self.app(environ, lambda status, headers, exc_info=None: answered.append(status) or (lambda data: None))
        try:
            for _ in body:
                pass
        finally:
            if hasattr(body, "close"):
                body.close()
        self.lost.append(answered[0])
        start_response("502 Bad Gateway", [("Content-Type", "text/html"), ("Content-Length", str(len(self.LOST_PAGE)))])
        return [self.LOST_PAGE]
