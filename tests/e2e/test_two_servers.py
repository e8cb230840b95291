"""Two app servers on one PostgreSQL, a handheld alternating between them request by request (as
behind a round-robin load balancer): sign-in, throttling, the remembered printer, receiving and
photos behave as on one server, because nothing of them lives in one process."""
from __future__ import annotations

import io
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import pytest
from PIL import Image
from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import Session

from app.inspection.models import Photo
from app.labels.services import save_printer
from app.ledger.models import ReturnUnit
from tests.fakes import PRINTER_NETWORKS, FakePrinter, S3Server
from tests.servers import Gunicorn, exchange

CSRF_RE = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


class Handheld:
    """A device behind a load balancer: each request goes to the next server in turn."""

    def __init__(self, servers: list[Gunicorn]) -> None:
        self.ports = [s.port for s in servers]
        self.turn = 0
        self.cookies: dict[str, str] = {}
        self.csrf = ""
        self.served_by: list[int] = []

    def request(self, method: str, path: str, fields: dict | None = None, *, htmx: bool = True,  # type: ignore[type-arg]
                body: bytes | None = None, content_type: str | None = None) -> tuple[int, str]:
        port = self.ports[self.turn % len(self.ports)]
        self.turn += 1
        self.served_by.append(port)
        headers = {}
        if fields is not None:
            body, content_type = urlencode(fields).encode(), "application/x-www-form-urlencoded"
        if content_type:
            headers["Content-Type"] = content_type
        if htmx:
            headers["HX-Request"] = "true"
        if self.csrf:
            headers["X-CSRFToken"] = self.csrf
        return exchange(port, method, path, cookies=self.cookies, headers=headers, body=body)

    def sign_in(self, username: str, password: str = "password123") -> int:
        _, page = self.request("GET", "/login", htmx=False)
        token = CSRF_RE.search(page).group(1)  # type: ignore[union-attr]
        status, _ = self.request("POST", "/login", {"csrf_token": token, "username": username, "password": password},
                                 htmx=False)
        if status == 302:
            _, page = self.request("GET", "/receive", htmx=False)
            self.csrf = CSRF_RE.search(page).group(1)  # type: ignore[union-attr]
        return status


@pytest.fixture
def s3_bucket(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[S3Server, str]]:
    server = S3Server()
    bucket = f"dockhand-{uuid.uuid4().hex[:12]}"
    server.client().create_bucket(Bucket=bucket)
    yield server, bucket
    server.stop()


@pytest.fixture
def two_servers(e2e_db_url: str, e2e_world, s3_bucket, tmp_path: Path) -> Iterator[list[Gunicorn]]:  # type: ignore[no-untyped-def]
    s3, bucket = s3_bucket
    env = {"DOCKHAND_PHOTO_STORE": "s3", "DOCKHAND_S3_BUCKET": bucket, "DOCKHAND_S3_ENDPOINT_URL": s3.url,
           "DOCKHAND_S3_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
           "DOCKHAND_PRINTER_NETWORKS": str(PRINTER_NETWORKS)}
    servers = []
    try:
        for i in range(2):
            (tmp_path / f"server{i}").mkdir()
            servers.append(Gunicorn(e2e_db_url, tmp_path / f"server{i}" / "gunicorn.log", env=env))
        yield servers
    finally:
        for s in servers:
            s.stop()


def _photo() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (800, 600), (40, 90, 160)).save(buf, "JPEG")
    return buf.getvalue()


def test_a_handheld_alternating_between_two_servers_works_as_on_one(two_servers, e2e_db_url, e2e_world, s3_bucket):
    s3, bucket = s3_bucket
    engine = create_engine(e2e_db_url)
    printer = FakePrinter()
    try:
        with Session(engine) as session:
            saved = save_printer(session, e2e_world.actor("admin"), printer_id=None, name="Dock 1 Zebra",
                                 warehouse_id=e2e_world.wh.id, host=printer.host, port=printer.port, stock="4x6",
                                 active=True, idempotency_key=uuid.uuid4().hex, networks=PRINTER_NETWORKS)
        device = Handheld(two_servers)

        # Sign-in on one server is a session on the other; throttling counts on both together.
        assert device.sign_in("worker") == 302
        assert device.request("GET", "/receive", htmx=False)[0] == 200
        intruder = Handheld(two_servers)
        assert [intruder.sign_in("super", "wrong") for _ in range(5)] == [401] * 5
        assert intruder.sign_in("super") == 429  # the sixth, on either server: refused

        # Receiving: the parcel opened on one server, its item scanned on the other, closed on the first.
        status, _ = device.request("POST", "/receive/warehouse", {"warehouse_id": e2e_world.wh.id})
        assert status == 200
        assert device.request("POST", "/receive/scan", {"code": e2e_world.tracking.tracking_number,
                                                        "key": uuid.uuid4().hex})[0] == 200
        item_key = uuid.uuid4().hex
        first = device.request("POST", "/receive/scan", {"code": "036000291452", "key": item_key})
        again = device.request("POST", "/receive/scan", {"code": "036000291452", "key": item_key})  # answer lost
        assert first[0] == again[0] == 200
        with Session(engine) as session:
            units = session.scalars(select(ReturnUnit)).all()
        assert len(units) == 1
        unit = units[0]

        # The printer chosen on one server is the one the other prints to (a cookie, not a process).
        status, _ = device.request("POST", "/labels/printer", {"choice": f"p:{saved.printer_id}"})
        assert status == 303
        status, text = device.request("POST", f"/labels/unit/{unit.id}/send",
                                      {"kind": "lpn", "idempotency_key": uuid.uuid4().hex})
        assert status == 200 and "sent to Dock 1 Zebra" in text
        assert len(printer.jobs) == 1

        # A photo sent to one server is in the shared bucket, and the other serves it.
        boundary = uuid.uuid4().hex
        body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"key\"\r\n\r\n{uuid.uuid4().hex}\r\n"
                f"--{boundary}\r\nContent-Disposition: form-data; name=\"photo\"; filename=\"p.jpg\"\r\n"
                "Content-Type: image/jpeg\r\n\r\n").encode() + _photo() + f"\r\n--{boundary}--\r\n".encode()
        status, _ = device.request("POST", f"/receive/units/{unit.id}/photos", body=body,
                                   content_type=f"multipart/form-data; boundary={boundary}")
        assert status == 200
        with Session(engine) as session:
            photo = session.scalars(select(Photo)).one()
        desk = Handheld(two_servers)
        assert desk.sign_in("super2") == 302
        status, _ = desk.request("GET", f"/desk/photos/{photo.id}", htmx=False)
        status_again, _ = desk.request("GET", f"/desk/photos/{photo.id}/thumb", htmx=False)
        assert status == status_again == 200
        assert len(s3.client().list_objects_v2(Bucket=bucket)["Contents"]) == 2

        # Signing out on one server ends the session on both.
        device.request("POST", "/logout", {"csrf_token": device.csrf}, htmx=False)
        assert device.request("GET", "/receive")[0] == 401
        assert device.request("GET", "/receive")[0] == 401
        assert set(device.served_by) == {s.port for s in two_servers}
        with Session(engine) as session:
            assert session.scalar(select(func.count()).select_from(Photo)) == 1
    finally:
        printer.close()
        engine.dispose()
