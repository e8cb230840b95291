"""Real stand-ins for the outside world: a network printer on this machine's own (non-loopback)
address, and a reverse proxy that loses answers."""
from __future__ import annotations

import contextlib
import ipaddress
import socket
import threading
import time
from collections.abc import Iterator

from app.labels.printer import DEFAULT_NETWORKS, PrinterNetworks


def _printer_host() -> str:
    """An address of this machine that is not loopback: Dockhand never sends to a printer on its
    own host's loopback, so the stand-in printers listen here (no packet leaves the machine)."""
    for family, probe in ((socket.AF_INET, "198.51.100.1"), (socket.AF_INET6, "2001:db8::1")):
        try:
            with socket.socket(family, socket.SOCK_DGRAM) as udp:
                udp.connect((probe, 9))  # picks the route's source address; sends nothing
                address = udp.getsockname()[0]
        except OSError:
            continue
        if not ipaddress.ip_address(address).is_loopback:
            return address
    raise RuntimeError("the printer tests need a network address on this machine other than loopback")


PRINTER_HOST = _printer_host()
# The private LAN ranges and this machine's address: what the tests allow printers on.
PRINTER_NETWORKS = PrinterNetworks.parse(f"{DEFAULT_NETWORKS},{ipaddress.ip_network(PRINTER_HOST)}")


def _family() -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in PRINTER_HOST else socket.AF_INET


class FakePrinter:
    """A raw-TCP 'Zebra' on PRINTER_HOST that keeps each job it is sent, read to EOF."""

    def __init__(self) -> None:
        """Listen on a free port and serve in a daemon thread."""
        self.server = socket.create_server((PRINTER_HOST, 0), family=_family())
        self.host = PRINTER_HOST
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
    """A port on PRINTER_HOST where nothing listens (connections are refused)."""
    with socket.socket(_family()) as probe:
        probe.bind((PRINTER_HOST, 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def unresponsive_port() -> Iterator[int]:
    """A port whose accept queue is full, so a new connection hangs until the sender times out."""
    server = socket.socket(_family())
    server.bind((PRINTER_HOST, 0))
    server.listen(0)
    port = server.getsockname()[1]
    fillers = []
    for _ in range(4):
        filler = socket.socket(_family())
        filler.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            filler.connect((PRINTER_HOST, port))
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


class ClientAddress:
    """WSGI middleware that makes the app see each request come from `address`, which a test
    changes: a handheld roaming from the dock's Wi-Fi to mobile data."""

    def __init__(self, app, address: str) -> None:  # type: ignore[no-untyped-def]
        self.app, self.address = app, address

    def __call__(self, environ, start_response):  # type: ignore[no-untyped-def]
        environ["REMOTE_ADDR"] = self.address
        return self.app(environ, start_response)


class S3Server:
    """A real S3 API server (moto's server mode) on 127.0.0.1, in its own process."""

    def __init__(self) -> None:
        last = ""
        for _ in range(3):  # a port taken between choosing it and moto binding it: choose again
            if self._start():
                return
            last = self.log.read_text()[-1500:] if self.log.exists() else ""
        raise RuntimeError(f"moto's S3 server did not start: {last}")

    def _start(self) -> bool:
        import subprocess
        import sys
        import tempfile
        import urllib.request
        from pathlib import Path

        from tests.pg import _free_port

        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = Path(tempfile.mkstemp(prefix="dockhand-moto-", suffix=".log")[1])
        with self.log.open("w") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
                                         stdout=out, stderr=subprocess.STDOUT)
        deadline = time.time() + 60
        while time.time() < deadline and self.proc.poll() is None:
            try:
                urllib.request.urlopen(self.url + "/moto-api/", timeout=1).close()
                return True
            except OSError:
                time.sleep(0.1)
        self.stop()
        return False

    def client(self, endpoint: str | None = None):  # type: ignore[no-untyped-def]
        import boto3

        return boto3.client("s3", endpoint_url=endpoint or self.url, region_name="us-east-1",
                            aws_access_key_id="test", aws_secret_access_key="test")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
        self.proc.wait(timeout=10)


class CuttingProxy:
    """A TCP proxy in front of a server that can go away: refuse every connection (`down`), or
    cut the connection mid-request after `cut_after` bytes from the client and stay down (the
    server vanished in the middle of an upload)."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.down = False
        self.cut_after: int | None = None
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if self.down:
                client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                client.close()  # a reset: nothing listens any more
                continue
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
            threading.Thread(target=self._pipe, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, False), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket, from_client: bool) -> None:
        sent = 0
        try:
            while data := src.recv(65536):
                if from_client and self.cut_after is not None and sent + len(data) > self.cut_after:
                    dst.sendall(data[: self.cut_after - sent])
                    self.down, self.cut_after = True, None
                    break
                dst.sendall(data)
                sent += len(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def close(self) -> None:
        self._closed = True
        self.listener.close()


class WebhookReceiver:
    """A real HTTP receiver on 127.0.0.1 that checks each delivery's Standard Webhooks signature
    with the `standardwebhooks` library, as a customer's endpoint would. `answers` is a list of
    statuses to give in turn (then 200 for ever); `received` keeps (webhook-id, status, body) of
    every POST; a bad signature is answered 400 and kept in `bad_signatures`."""

    def __init__(self, secret: str | None = None, answers: list[int] | None = None) -> None:
        import json
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        from standardwebhooks.webhooks import Webhook, WebhookVerificationError

        self.secret, self.answers = secret, list(answers or [])
        self.received: list[tuple[str, int, dict]] = []
        self.bad_signatures = 0
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802
                data = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                headers = {k.lower(): v for k, v in self.headers.items()}
                try:
                    body = Webhook(receiver.secret).verify(data, headers) if receiver.secret else json.loads(data)
                except WebhookVerificationError:
                    with receiver.lock:
                        receiver.bad_signatures += 1
                    status, body = 400, {}
                else:
                    with receiver.lock:
                        status = receiver.answers.pop(0) if receiver.answers else 200
                with receiver.lock:
                    receiver.received.append((headers.get("webhook-id", ""), status, body))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def acknowledged(self) -> list[str]:
        """The webhook-ids answered 2xx, in order."""
        return [wid for wid, status, _ in self.received if 200 <= status < 300]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
