"""Photos in S3-compatible object storage, against a real S3 API server on 127.0.0.1 (moto's
server mode) behind a proxy that can make it go away: a photo and its file stand or fall together."""
from __future__ import annotations

import io
import uuid
from collections.abc import Iterator

import pytest
from PIL import Image
from sqlalchemy import func, select

from app import create_app
from app.inspection.models import Photo
from tests.conftest import login
from tests.fakes import CuttingProxy, S3Server

HX = {"HX-Request": "true"}


def key() -> str:
    return uuid.uuid4().hex


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Server]:
    server = S3Server()
    yield server
    server.stop()


@pytest.fixture
def proxy(s3: S3Server) -> Iterator[CuttingProxy]:
    p = CuttingProxy(s3.port)
    yield p
    p.close()


@pytest.fixture
def bucket(s3: S3Server, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    name = f"dockhand-{uuid.uuid4().hex[:12]}"
    s3.client().create_bucket(Bucket=name)
    return name


@pytest.fixture
def s3_client(app, proxy: CuttingProxy, bucket: str):  # type: ignore[no-untyped-def]
    """The app with its photos in the bucket, reached through the proxy."""
    s3_app = create_app({**app.config, "PHOTO_STORE": "s3", "S3_BUCKET": bucket, "S3_ENDPOINT_URL": proxy.url,
                         "S3_REGION": "us-east-1"})
    return s3_app, s3_app.test_client()


def objects(s3: S3Server, bucket: str) -> list[str]:
    return sorted(o["Key"] for o in s3.client().list_objects_v2(Bucket=bucket).get("Contents", []))


def photo_file(size: tuple[int, int] = (1600, 1200), seed: int = 1) -> tuple[io.BytesIO, str]:
    """A noisy JPEG (incompressible enough that its upload takes several packets)."""
    import random

    rng = random.Random(seed)
    small = Image.frombytes("RGB", (160, 120), bytes(rng.getrandbits(8) for _ in range(160 * 120 * 3)))
    buf = io.BytesIO()
    small.resize(size).save(buf, "JPEG", quality=90)
    buf.seek(0)
    return buf, "photo.jpg"


def received_unit(client, world) -> int:  # type: ignore[no-untyped-def]
    login(client, "worker")
    client.post("/receive/warehouse", data={"warehouse_id": world.wh.id})
    client.post("/receive/scan", data={"code": "RMA-5001", "key": key()}, headers=HX)
    client.post("/receive/scan", data={"code": "036000291452", "key": key()}, headers=HX)
    return 1


def upload(client, unit_id: int, request_key: str, seed: int = 1):  # type: ignore[no-untyped-def]
    return client.post(f"/receive/units/{unit_id}/photos", data={"key": request_key, "photo": photo_file(seed=seed)},
                       headers=HX, content_type="multipart/form-data")


def photo_count(session) -> int:  # type: ignore[no-untyped-def]
    session.rollback()
    return session.scalar(select(func.count()).select_from(Photo))


def test_a_photo_is_stored_in_the_bucket_and_served_after_the_permission_check(s3_client, s3, bucket, world, session):
    app, client = s3_client
    unit = received_unit(client, world)
    first_key = key()
    assert upload(client, unit, first_key).status_code == 200
    assert upload(client, unit, first_key).status_code == 200  # the answer was lost: sent again
    assert photo_count(session) == 1
    stored = objects(s3, bucket)
    assert len(stored) == 2 and all(k.startswith("photos/") for k in stored)
    assert any(k.endswith("_t.jpg") for k in stored)
    photo = session.scalars(select(Photo)).one()

    supervisor = app.test_client()
    login(supervisor, "super")
    full = supervisor.get(f"/desk/photos/{photo.id}")
    assert full.status_code == 200 and full.mimetype == "image/jpeg"
    body = s3.client().get_object(Bucket=bucket, Key=f"photos/{photo.storage_key}")["Body"].read()
    assert full.data == body
    assert Image.open(io.BytesIO(supervisor.get(f"/desk/photos/{photo.id}/thumb").data)).width <= 320
    partner = app.test_client()
    login(partner, "partner")
    assert partner.get(f"/desk/photos/{photo.id}").status_code in (403, 404)


def test_storage_down_refuses_the_photo_clearly_and_keeps_nothing(s3_client, s3, bucket, proxy, world, session):
    _, client = s3_client
    unit = received_unit(client, world)
    proxy.down = True
    same_key = key()
    refused = upload(client, unit, same_key)
    assert refused.status_code == 503
    assert b"Photo storage cannot be reached just now" in refused.data and b"Reference:" in refused.data
    assert photo_count(session) == 0 and objects(s3, bucket) == []
    proxy.down = False
    assert upload(client, unit, same_key).status_code == 200  # the handheld sends it again: saved once
    assert photo_count(session) == 1 and len(objects(s3, bucket)) == 2


@pytest.mark.parametrize("cut_after", [2_000, 60_000])
def test_the_server_going_away_mid_upload_leaves_no_row_and_no_object(s3_client, s3, bucket, proxy, world, session,
                                                                     cut_after):
    """Cut inside the thumbnail's upload (2 KB) or inside the full photo's, after the thumbnail was
    stored (60 KB): either way no row, and no object once the storage is back."""
    app, client = s3_client
    unit = received_unit(client, world)
    proxy.cut_after = cut_after
    refused = upload(client, unit, key())
    assert refused.status_code == 503
    assert photo_count(session) == 0
    left = objects(s3, bucket)  # the storage went away before the upload could take its thumbnail back
    assert all(k.endswith("_t.jpg") for k in left)
    proxy.down = False
    result = app.test_cli_runner().invoke(args=["sweep-photos", "--older-than-minutes", "0"])
    assert result.exit_code == 0, result.output
    assert objects(s3, bucket) == []


def test_a_failed_transaction_takes_back_the_file_it_stored(s3_client, s3, bucket, world, session, monkeypatch):
    """The file was stored, then the database refused the row: the file is deleted at once."""
    import app.inspection.services as services

    _, client = s3_client
    unit = received_unit(client, world)

    def refuse(*_args, **_kwargs):  # type: ignore[no-untyped-def]
        raise services.Conflict("The database refused the row.")

    monkeypatch.setattr(services, "audit_row", refuse)
    assert upload(client, unit, key()).status_code == 409
    assert photo_count(session) == 0 and objects(s3, bucket) == []


def test_the_sweep_keeps_files_that_photos_refer_to(s3_client, s3, bucket, world, session):
    app, client = s3_client
    unit = received_unit(client, world)
    assert upload(client, unit, key()).status_code == 200
    s3.client().put_object(Bucket=bucket, Key="photos/ab/cd/abcd" + "0" * 60 + ".jpg", Body=b"orphan")
    result = app.test_cli_runner().invoke(args=["sweep-photos", "--older-than-minutes", "0"])
    assert "1 photo file(s) without a photo deleted" in result.output
    assert len(objects(s3, bucket)) == 2 and photo_count(session) == 1


def test_a_bucket_that_refuses_is_a_clear_503_and_keeps_nothing(app, proxy, s3, world, session, monkeypatch):
    """A 4xx from the storage (here: no such bucket; a damaged body or a missing permission alike)."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    missing = create_app({**app.config, "PHOTO_STORE": "s3", "S3_BUCKET": f"never-made-{uuid.uuid4().hex[:8]}",
                          "S3_ENDPOINT_URL": proxy.url, "S3_REGION": "us-east-1"})
    client = missing.test_client()
    unit = received_unit(client, world)
    refused = upload(client, unit, key())
    assert refused.status_code == 503 and b"Photo storage cannot be reached" in refused.data
    assert photo_count(session) == 0
