"""The reconciliation screens (/reconciliation): who may open and change what, the upload's
line-numbered refusals and the 200 MB file, the variance review and a line's workflow, expected
against received, the CSV export. No input is a 500."""
from __future__ import annotations

import io
import uuid

from sqlalchemy import func, select

from app.ledger.models import ReturnUnit
from app.reconciliation.models import ReconSnapshot, ReconVariance
from tests.conftest import login
from tests.recon_scenario import SNAPSHOT, build_history, make_source


def key() -> str:
    return uuid.uuid4().hex


def upload(client, source_id: int, as_of: str, data: bytes):  # type: ignore[no-untyped-def]
    return client.post("/reconciliation/snapshots", data={"key": key(), "source_id": str(source_id), "as_of": as_of,
                                                          "file": (io.BytesIO(data), "snap.csv")},
                       content_type="multipart/form-data")


def test_roles_see_and_change_what_they_may(app, session, world):
    source_id = make_source(session, world)
    pages = ["/reconciliation/", "/reconciliation/expected"]
    for user, status in (("worker", 403), ("super", 200), ("admin", 200), ("partner", 200)):
        client = login(app.test_client(), user)
        for page in pages:
            assert client.get(page).status_code == status, (user, page)
    worker = login(app.test_client(), "worker")
    assert upload(worker, source_id, "2026-01-01T00:00:00", SNAPSHOT.encode()).status_code == 403
    partner = login(app.test_client(), "partner")
    assert partner.post("/reconciliation/sources", data={"key": key(), "code": "X", "name": "X",
                                                         "mapping": "A = available"}).status_code == 403
    outsider = login(app.test_client(), "outsider")
    assert b"FASTLANE" not in outsider.get("/reconciliation/").data
    assert upload(outsider, source_id, "2026-01-01T00:00:00", SNAPSHOT.encode()).status_code == 404


def test_upload_preview_accept_review_and_resolve(app, session, world):
    source_id = make_source(session, world)
    t, units = build_history(session, world)
    partner = login(app.test_client(), "partner")
    resp = upload(partner, source_id, t.strftime("%Y-%m-%dT%H:%M:%S.%f"), SNAPSHOT.encode())
    assert resp.status_code == 303, resp.get_data(as_text=True)[:500]
    page = partner.get(resp.headers["Location"])
    assert page.status_code == 200 and b"Accept and compare" in page.data
    assert b"the ledger holds <strong>3</strong> items" in page.data  # the shirt, the cream, the phone (as SKUs)
    snap_id = int(resp.headers["Location"].rstrip("/").split("/")[-1])
    done = partner.post(f"/reconciliation/snapshots/{snap_id}/accept", data={"key": key()})
    assert done.status_code == 200 and b"Roll-forward" in done.data and b"short" in done.data
    assert b"724.00" not in done.data and b"699.00" not in done.data  # partners see no money
    assert b"724.00" in login(app.test_client(), "super").get(f"/reconciliation/snapshots/{snap_id}").data
    csv_text = partner.get(f"/reconciliation/snapshots/{snap_id}/variances.csv").get_data(as_text=True)
    assert "TEE-BLU-M" in csv_text and csv_text.count("\n") == 6
    line = session.scalars(select(ReconVariance).where(ReconVariance.state == "quarantine")).one()
    session.rollback()
    # The partner reads the line but may not resolve it or correct units; a supervisor may.
    assert partner.get(f"/reconciliation/variances/{line.id}").status_code == 200
    assert partner.post(f"/reconciliation/variances/{line.id}/resolve",
                        data={"key": key(), "resolution": "timing"}).status_code == 403
    sup = login(app.test_client(), "super")
    detail = sup.get(f"/reconciliation/variances/{line.id}")
    assert units["creams"][0].lpn.encode() in detail.data
    moved = sup.post(f"/reconciliation/variances/{line.id}/correct",
                     data={"key": key(), "lpn": units["creams"][0].lpn, "direction": "lost", "reason": "not on its shelf"})
    assert moved.status_code == 200 and b"missing in the ledger" in moved.data
    session.rollback()
    assert session.scalar(select(ReturnUnit.state).where(ReturnUnit.id == units["creams"][0].id)) == "missing"
    saved = sup.post(f"/reconciliation/variances/{line.id}/resolve",
                     data={"key": key(), "resolution": "lost_unit", "notes": "gone", "version": "1"})
    assert saved.status_code == 200 and b"Saved." in saved.data
    stale = sup.post(f"/reconciliation/variances/{line.id}/resolve",
                     data={"key": key(), "resolution": "timing", "version": "1"})
    assert stale.status_code == 409


def test_bad_files_name_their_lines_and_keep_nothing(app, session, world):
    source_id = make_source(session, world)
    sup = login(app.test_client(), "super")
    bad = b"warehouse,merchant,sku,bucket,quantity\n3PL1,ACME,TEE-BLU-M,SELLABLE,-1\n3PL1,ACME,NOPE,SELLABLE,1\n"
    resp = upload(sup, source_id, "2026-01-01T00:00:00", bad)
    assert resp.status_code == 422
    text = resp.get_data(as_text=True)
    assert "line 2 quantity" in text and "line 3 sku" in text
    for as_of in ("", "yesterday", "2999-01-01T00:00:00"):
        assert upload(sup, source_id, as_of, SNAPSHOT.encode()).status_code == 422
    assert upload(sup, 999999, "2026-01-01T00:00:00", SNAPSHOT.encode()).status_code == 404
    assert sup.post("/reconciliation/sources", data={"key": key(), "code": "Y", "name": "Y",
                                                     "mapping": "A = nowhere"}).status_code == 422
    for path in ("/reconciliation/snapshots/999999", "/reconciliation/variances/999999"):
        assert sup.get(path).status_code == 404
    assert sup.post("/reconciliation/corrections/999999/decide", data={"key": key(), "reason": "x"}).status_code == 404
    session.rollback()
    assert session.scalar(select(func.count()).select_from(ReconSnapshot)) == 0


def test_a_200_mb_file_is_refused_before_it_is_read(app, session, world):
    source_id = make_source(session, world)
    sup = login(app.test_client(), "super")
    big = b"warehouse,merchant,sku,bucket,quantity\n" + b"3PL1,ACME,TEE-BLU-M,SELLABLE,1\n" * (200 * 1024 * 1024 // 31)
    resp = upload(sup, source_id, "2026-01-01T00:00:00", big)
    assert resp.status_code == 413 and b"Nothing was kept" in resp.data
    session.rollback()
    assert session.scalar(select(func.count()).select_from(ReconSnapshot)) == 0


def test_expected_against_received_drills_down(app, session, world):
    sup = login(app.test_client(), "super")
    page = sup.get("/reconciliation/expected")
    assert page.status_code == 200 and b"In transit with the carrier" in page.data
    drill = sup.get("/reconciliation/expected?bucket=in_transit")
    assert drill.status_code == 200 and b"RMA-5001" in drill.data
    exported = sup.get("/reconciliation/expected.csv?bucket=in_transit").get_data(as_text=True)
    assert "RMA-5001,WH1,749.00" in exported
    assert sup.get("/reconciliation/expected.csv?bucket=nope").status_code == 404
    partner = login(app.test_client(), "partner")
    assert b"RMA-5001" not in partner.get("/reconciliation/expected?bucket=in_transit").data  # WH1 is not theirs
