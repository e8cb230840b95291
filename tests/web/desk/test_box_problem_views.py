"""From the handheld's "Problem with the box?" to the desk: the report with its photos, the
exception's owner and due time, the "mine" filter; refusals change nothing and are never a 500."""
from __future__ import annotations

import io
import re
import uuid

from PIL import Image
from sqlalchemy import func, select

from app.exceptions.models import ReturnException
from app.inspection.models import Photo
from tests.conftest import login

HX = {"HX-Request": "true"}


def jpeg(shade: int = 0) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (320, 240), (120, 80, 40 + shade)).save(buf, "JPEG")
    return buf.getvalue()


def open_box(client, world) -> int:  # type: ignore[no-untyped-def]
    client.post("/receive/warehouse", data={"warehouse_id": world.wh.id}, headers=HX)
    page = client.post("/receive/scan", data={"code": "RMA-5001", "key": uuid.uuid4().hex}, headers=HX).get_data(as_text=True)
    assert "Problem with the box?" in page
    return int(re.search(r'name="parcel_id" value="(\d+)"', page).group(1))


def send(client, parcel_id, *, problem="damaged_in_transit", photos=1):  # type: ignore[no-untyped-def]
    data = {"key": uuid.uuid4().hex, "parcel_id": str(parcel_id), "problem": problem, "note": "crushed corner",
            "photo": [(io.BytesIO(jpeg(60 * i)), f"box{i}.jpg") for i in range(photos)]}
    return client.post("/receive/problem", data=data, content_type="multipart/form-data", headers=HX)


def count(session, model) -> int:  # type: ignore[no-untyped-def]
    session.rollback()
    return session.scalar(select(func.count()).select_from(model))


def test_a_worker_reports_a_damaged_box_and_a_supervisor_takes_it(client, world, session):
    login(client, "worker")
    parcel_id = open_box(client, world)
    bad = send(client, parcel_id, photos=0)
    assert bad.status_code == 422 and "Take a photo of the box" in bad.get_data(as_text=True)
    done = send(client, parcel_id, photos=2)
    said = done.get_data(as_text=True)
    assert done.status_code == 200 and "damaged in transit: reported to the desk with 2 photos" in said, said[:400]
    assert count(session, ReturnException) == 1 and count(session, Photo) == 2
    exc = session.scalars(select(ReturnException)).one()
    client.post("/logout")
    login(client, "super")
    queue = client.get("/desk/exceptions/damaged_in_transit").get_data(as_text=True)
    assert "due in 24 h" in queue and "nobody owns it" in queue and "Mine only" in queue
    spanish = client.get("/desk/exceptions/damaged_in_transit", headers={"Accept-Language": "es"}).get_data(as_text=True)
    assert "vence en 24 h" in spanish and "due in" not in spanish
    assert "crushed corner" not in client.get("/desk/exceptions/damaged_in_transit?mine=1").get_data(as_text=True).split("<table")[0]
    page = client.get(f"/desk/exception/{exc.id}").get_data(as_text=True)
    assert "Photos of the box" in page and page.count("/thumb") == 2 and "“crushed corner”" in page
    taken = client.post(f"/desk/exception/{exc.id}/assign", data={"owner": "me", "key": uuid.uuid4().hex, "version": "1",
                                                                 "context": "exception"}, headers=HX)
    assert taken.status_code == 200 and "Super owns this exception now." in taken.get_data(as_text=True)
    mine = client.get("/desk/exceptions/damaged_in_transit?mine=1").get_data(as_text=True)
    assert "owner: Super" in mine and "Everyone&#39;s" in mine or "Everyone's" in mine
    for photo_id in session.scalars(select(Photo.id)):
        assert client.get(f"/desk/photos/{photo_id}/thumb").status_code == 200


def test_refused_assignments_change_nothing_and_are_not_errors(client, world, session):
    login(client, "worker")
    parcel_id = open_box(client, world)
    send(client, parcel_id, problem="empty_box")
    exc_id = session.scalars(select(ReturnException.id)).one()
    worker = client.post(f"/desk/exception/{exc_id}/assign", data={"owner": "me", "key": uuid.uuid4().hex})
    assert worker.status_code == 403
    client.post("/logout")
    login(client, "super")
    for owner in ("abc", "-1", "99999999999999999999", str(world.users["worker"].id)):
        resp = client.post(f"/desk/exception/{exc_id}/assign", data={"owner": owner, "key": uuid.uuid4().hex}, headers=HX)
        assert resp.status_code in (404, 422), (owner, resp.status_code)
    assert client.post("/desk/exception/999999/assign", data={"owner": "me", "key": uuid.uuid4().hex}).status_code == 404
    session.rollback()
    assert session.get(ReturnException, exc_id).owner_id is None and session.get(ReturnException, exc_id).version == 1
