"""A photo taken while object storage is out of reach, in Chromium at handheld size: the worker is
told what is out of reach (with the reference to quote), the handheld sends the photo again by
itself, and once the storage is back the photo is there, once."""
from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import Session

from app.inspection.models import Photo
from app.ledger.models import ReturnUnit
from tests.e2e.conftest import receive_one, shoot, sign_in
from tests.fakes import PRINTER_NETWORKS, CuttingProxy, S3Server


@pytest.fixture
def storage(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    server = S3Server()
    bucket = f"dockhand-{uuid.uuid4().hex[:12]}"
    server.client().create_bucket(Bucket=bucket)
    proxy = CuttingProxy(server.port)
    yield server, bucket, proxy
    proxy.close()
    server.stop()


@pytest.fixture
def live_app(e2e_db_url: str, storage, tmp_path: Path):  # type: ignore[no-untyped-def]
    """The real app with its photos in the bucket, reached through the proxy."""
    from app import create_app
    from app.db import db

    _, bucket, proxy = storage
    application = create_app({"DATABASE_URL": e2e_db_url, "SECRET_KEY": "e2e", "PHOTO_DIR": str(tmp_path / "photos"),
                              "PRINTER_NETWORKS": PRINTER_NETWORKS, "PHOTO_STORE": "s3", "S3_BUCKET": bucket,
                              "S3_ENDPOINT_URL": proxy.url, "S3_REGION": "us-east-1"})
    yield application
    db.dispose()


def test_a_photo_taken_while_storage_is_down_arrives_once_when_it_is_back(live_server, e2e_world, e2e_db_url, storage,
                                                                         handheld, tmp_path):
    server, bucket, proxy = storage
    picture = tmp_path / "photo.jpg"
    Image.new("RGB", (1200, 900), (30, 120, 200)).save(picture, "JPEG")
    page = handheld.new_page()
    sign_in(page, live_server, "worker")
    page.goto(f"{live_server}/receive")
    page.click("text=WH1 · Main DC")
    receive_one(page, e2e_world.tracking.tracking_number, "036000291452")
    engine = create_engine(e2e_db_url)
    try:
        with Session(engine) as session:
            unit_id = session.scalars(select(ReturnUnit.id)).one()
        page.goto(f"{live_server}/receive/units/{unit_id}")
        proxy.down = True
        page.set_input_files("#photo-input", str(picture))
        notice = page.wait_for_selector(".msg-pending:has-text('Photo storage cannot be reached')")
        assert "Reference:" in notice.inner_text() and "Still checking again" in notice.inner_text()
        shoot(page, "handheld-photo-storage-down")
        with Session(engine) as session:
            assert session.scalar(select(func.count()).select_from(Photo)) == 0
        proxy.down = False
        page.wait_for_selector("#photos img", timeout=30000)
        shoot(page, "handheld-photo-storage-back")
        with Session(engine) as session:
            assert session.scalar(select(func.count()).select_from(Photo)) == 1
        assert len(server.client().list_objects_v2(Bucket=bucket)["Contents"]) == 2
    finally:
        engine.dispose()
