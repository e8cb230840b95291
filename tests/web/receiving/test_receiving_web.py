"""The handheld endpoints through the Flask client: fragments vs pages, refusals, fuzzed scans."""
from __future__ import annotations

import itertools

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from app.ledger.models import ReturnUnit
from tests.conftest import login

HX = {"HX-Request": "true"}
_keys = itertools.count(1)


def key() -> str:
    return f"web-key-{next(_keys):08d}"


def _choose(client, world) -> None:
    resp = client.post("/receive/warehouse", data={"warehouse_id": world.wh.id}, headers=HX)
    assert resp.status_code == 200


def test_page_and_fragment(client, world):
    login(client, "worker")
    page = client.get("/receive")
    assert page.status_code == 200 and b"<html" in page.data and b'aria-label="Scan"' in page.data
    frag = client.get("/receive", headers=HX)
    assert frag.status_code == 200 and b"<html" not in frag.data
    assert "HX-Request" in frag.headers["Vary"]


def test_scan_flow_and_unknown_codes(client, world, session):
    login(client, "worker")
    _choose(client, world)
    unknown = client.post("/receive/scan", data={"code": "NOPE", "key": key()}, headers=HX)
    assert unknown.status_code == 422 and b"Start blind parcel" in unknown.data
    parcel = client.post("/receive/scan", data={"code": "RMA-5001", "key": key()}, headers=HX)
    assert parcel.status_code == 200 and b"RMA-5001" in parcel.data
    k = key()
    item = client.post("/receive/scan", data={"code": "036000291452", "key": k}, headers=HX)
    assert item.status_code == 200 and b"LP00000001" in item.data
    again = client.post("/receive/scan", data={"code": "036000291452", "key": k}, headers=HX)
    assert again.status_code == 200
    bad = client.post("/receive/scan", data={"code": "XYZ-NOT-A-THING", "key": key()}, headers=HX)
    assert bad.status_code == 422 and bad.headers["HX-Retarget"] == "#messages" and b"Unknown code" in bad.data
    session.rollback()
    assert session.scalar(select(func.count()).select_from(ReturnUnit)) == 1


def test_worker_cannot_override(client, world):
    login(client, "worker")
    _choose(client, world)
    client.post("/receive/scan", data={"code": "RMA-5001", "key": key()}, headers=HX)
    client.post("/receive/scan", data={"code": "036000291452", "key": key()}, headers=HX)
    client.post("/receive/units/1/inspect", data={"grade": "A", "packaging": "sealed", "key": key()}, headers=HX)
    resp = client.post("/receive/units/1/dispose", data={"override": "dispose", "override_reason": "x", "key": key()}, headers=HX)
    assert resp.status_code == 403


def test_admin_and_strangers_are_refused(client, world):
    login(client, "admin")
    assert client.get("/receive").status_code == 403
    assert client.post("/receive/scan", data={"code": "RMA-5001", "key": key()}).status_code == 403


def test_partner_cannot_see_other_warehouse_units(client, world):
    login(client, "worker")
    _choose(client, world)
    client.post("/receive/scan", data={"code": "RMA-5001", "key": key()}, headers=HX)
    client.post("/receive/scan", data={"code": "036000291452", "key": key()}, headers=HX)
    client.post("/logout")
    login(client, "partner")
    assert client.get("/receive/units/1").status_code == 404
    # the partner cannot open a return meant for a warehouse that is not theirs either
    resp = client.post("/receive/scan", data={"code": "RMA-5001", "key": key()}, headers=HX)
    assert resp.status_code in (403, 404, 422)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(code=st.text(max_size=120) | st.sampled_from(["RMA-5001", "LP00000001", "LOC:WH1-DOCK-01", "(01)00614141999996(21)X",
                                                    "\x1d", "0100614141999996", "' OR 1=1 --", "%s%s", "\u202e"]))
def test_no_scan_input_yields_a_server_error(client, world, code):
    with client.session_transaction() as s:
        signed_in = "_user_id" in s
        s.pop("parcel_id", None)
        s.pop("pending_product_id", None)
    if not signed_in:
        login(client, "worker")
        _choose(client, world)
    for _ in range(2):  # once without a parcel, once inside one
        resp = client.post("/receive/scan", data={"code": code, "key": key()}, headers=HX)
        assert resp.status_code < 500, resp.data[:300]
        client.post("/receive/scan", data={"code": "RMA-5001", "key": key()}, headers=HX)


def test_huge_ids_are_not_found_not_errors(client, world):
    login(client, "worker")
    for url in ("/receive/units/100000000000000000000", "/labels/unit/100000000000000000000",
                "/receive/units/9223372036854775808"):
        assert client.get(url).status_code == 404


def test_serial_prompt_refuses_a_product_code_and_a_disposed_unit_is_not_regraded(client, world, session):
    login(client, "worker")
    _choose(client, world)
    client.post("/receive/scan", data={"code": "RMA-5001", "key": key()}, headers=HX)
    prompt = client.post("/receive/scan", data={"code": "00614141999996", "key": key()}, headers=HX)
    assert b"serial-tracked" in prompt.data
    wrong = client.post("/receive/scan", data={"code": "036000291452", "key": key()}, headers=HX)
    assert wrong.status_code == 422 and b"not a serial" in wrong.data
    ok = client.post("/receive/scan", data={"code": "SN-PHONE-0001", "key": key()}, headers=HX)
    assert ok.status_code == 200 and b"LP00000001" in ok.data
    client.post("/receive/units/1/inspect", data={"grade": "A", "packaging": "sealed", "key": key()}, headers=HX)
    assert client.post("/receive/units/1/dispose", data={"key": key()}, headers=HX).status_code == 200
    again = client.post("/receive/units/1/inspect", data={"grade": "D", "packaging": "damaged", "key": key()}, headers=HX)
    assert again.status_code == 409
    session.rollback()
    assert session.get(ReturnUnit, 1).grade == "A"


def test_the_inspection_just_saved_and_a_retry_of_it_show_the_same_answers(client, world):
    """The answer to an inspect shows the saved answers and notes (from the use case, not read
    again); a retry with the same key replays and shows them too; a fresh page reads them back."""
    login(client, "worker")
    _choose(client, world)
    client.post("/receive/scan", data={"code": "RMA-5001", "key": key()}, headers=HX)
    client.post("/receive/scan", data={"code": "036000291452", "key": key()}, headers=HX)
    form = {"grade": "B", "packaging": "opened", "notes": "box <dented>", "q_tags_attached": "yes",
            "q_unworn": "no", "key": key()}
    pages = [client.post("/receive/units/1/inspect", data=form, headers=HX).get_data(as_text=True) for _ in range(2)]
    pages.append(client.get("/receive/units/1", headers=HX).get_data(as_text=True))
    for html in pages:
        assert "box &lt;dented&gt;</textarea>" in html
        assert 'name="q_tags_attached" value="yes" checked' in html
        assert 'name="q_unworn" value="no" checked' in html
        assert 'name="grade" value="B" checked' in html


def test_a_login_switched_off_or_demoted_counts_from_the_next_request(client, world, session):
    """The signed-in user is read afresh on every request: switching a login off signs it out at
    once, and a changed role decides the very next request."""
    from sqlalchemy import update

    from app.auth.models import User

    login(client, "worker")
    assert client.get("/receive").status_code == 200
    session.execute(update(User).where(User.username == "worker").values(role="admin"))
    session.commit()
    assert client.get("/receive").status_code == 403  # admins run the system, not the dock
    session.execute(update(User).where(User.username == "worker").values(role="worker", active=False))
    session.commit()
    off = client.get("/receive")
    assert off.status_code == 302 and "/login" in off.headers["Location"]
    refused = client.post("/receive/scan", data={"code": "RMA-5001", "key": key()}, headers=HX)
    assert refused.status_code in (302, 401)
    from app.receiving.models import Parcel

    assert session.scalar(select(func.count()).select_from(Parcel)) == 0  # the parcel was not opened


def test_a_partners_parcel_linked_out_of_their_scope_does_not_lock_them_out(client, world, session):
    """A partner's open blind parcel that a supervisor links to a return of a merchant their
    organisation does not serve is no longer theirs to see: the screen shows no parcel (not a 404
    on every page and scan)."""
    from sqlalchemy import update

    from app.orders.models import Rma
    from app.receiving.models import Parcel

    login(client, "partner")
    assert client.post("/receive/warehouse", data={"warehouse_id": world.wh3pl.id}, headers=HX).status_code == 200
    blind = client.post("/receive/blind", data={"code": "MYSTERY-1", "key": key()}, headers=HX)
    assert blind.status_code == 200 and b"Blind parcel" in blind.data
    theirs = Rma(number="RMA-GLOBEX-1", merchant_id=world.other_merchant.id, channel_id=world.channel.id,
                 warehouse_id=world.wh3pl.id, status="receiving")
    session.add(theirs)
    session.flush()
    session.execute(update(Parcel).where(Parcel.scanned_code == "MYSTERY-1").values(rma_id=theirs.id))
    session.commit()
    page = client.get("/receive", headers=HX)
    assert page.status_code == 200 and b"RMA-GLOBEX-1" not in page.data and b"MYSTERY-1" not in page.data
    scan = client.post("/receive/scan", data={"code": "036000291452", "key": key()}, headers=HX)
    assert scan.status_code == 422 and b"Scan the parcel label" in scan.data


def test_a_category_is_inspected_against_its_newest_checklist_version(client, world, session):
    """A newer checklist version replaces the first on the unit screen and in what is recorded: its
    items only, an item left unanswered recorded as a no, an old item's answer dropped; the
    inspection keeps the version it was answered against."""
    from app.inspection.models import ChecklistVersion, Inspection

    session.add(ChecklistVersion(category="apparel", version=2, note="smoke", items=[
        {"key": "no_smoke", "label": "No smoke smell"}, {"key": "buttons", "label": "All buttons present"}]))
    session.commit()
    login(client, "worker")
    _choose(client, world)
    client.post("/receive/scan", data={"code": "RMA-5001", "key": key()}, headers=HX)
    client.post("/receive/scan", data={"code": "036000291452", "key": key()}, headers=HX)
    page = client.get("/receive/units/1", headers=HX).get_data(as_text=True)
    assert "No smoke smell" in page and "All buttons present" in page and "Original tags attached" not in page
    saved = client.post("/receive/units/1/inspect", headers=HX, data={
        "grade": "A", "packaging": "sealed", "q_no_smoke": "yes", "q_tags_attached": "yes", "key": key()})
    assert saved.status_code == 200 and 'name="q_no_smoke" value="yes" checked' in saved.get_data(as_text=True)
    session.rollback()
    assert session.execute(select(Inspection.answers, Inspection.checklist_version)
                           .where(Inspection.unit_id == 1)).one() == ({"no_smoke": True, "buttons": False}, 2)


def test_a_partners_scan_box_tells_nothing_of_merchants_and_warehouses_it_does_not_serve(client, world, session):
    """Another merchant's product and another warehouse's location label answer exactly as a code
    that does not exist; the partner's own location label is recognised."""
    from decimal import Decimal

    from app.catalog.models import Product
    from app.receiving.services import open_parcel

    session.add_all([Product(sku="GLX-PHONE", name="Globex phone", category="electronics", unit_value=Decimal("500"),
                             serial_tracked=True, merchant_id=world.other_merchant.id),
                     Product(sku="GLX-CABLE", name="Globex cable", category="electronics", unit_value=Decimal("5"),
                             merchant_id=world.other_merchant.id)])
    session.commit()
    open_parcel(session, world.actor("partner"), code="BLIND-7", warehouse_id=world.wh3pl.id, idempotency_key=key(),
                blind=True)
    login(client, "partner")
    client.post("/receive/warehouse", data={"warehouse_id": world.wh3pl.id}, headers=HX)

    def answer(code: str) -> tuple[int, str]:
        resp = client.post("/receive/scan", data={"code": code, "key": key()}, headers=HX)
        return resp.status_code, resp.get_data(as_text=True).replace(code, "<code>")

    nothing = answer("ZZZ-NOT-A-SKU")
    assert nothing[0] == 422
    assert answer("GLX-PHONE") == nothing
    assert answer("GLX-CABLE") == nothing
    assert answer("LOC:WH1-DOCK-01") == answer("LOC:WH9-NOPE-01")
    own = answer("LOC:3PL1-DOCK-01")
    assert own[0] == 422 and "location label" in own[1]
    session.rollback()
    assert session.scalar(select(func.count()).select_from(ReturnUnit)) == 0


def test_one_upload_carries_at_most_four_photos_and_a_fifth_adds_none(client, world, session):
    import io

    from PIL import Image

    from app.inspection.models import Photo

    def jpeg(shade: int) -> tuple[io.BytesIO, str]:
        buf = io.BytesIO()
        Image.new("RGB", (64, 48), (shade * 50, 80, 120)).save(buf, "JPEG")
        buf.seek(0)
        return buf, f"p{shade}.jpg"

    login(client, "worker")
    _choose(client, world)
    client.post("/receive/scan", data={"code": "RMA-5001", "key": key()}, headers=HX)
    client.post("/receive/scan", data={"code": "036000291452", "key": key()}, headers=HX)
    five = client.post("/receive/units/1/photos", data={"key": key(), "photo": [jpeg(s) for s in range(5)]},
                       headers=HX, content_type="multipart/form-data")
    assert five.status_code == 422 and b"at most 4 photos at once" in five.data
    session.rollback()
    assert session.scalar(select(func.count()).select_from(Photo)) == 0
    four = client.post("/receive/units/1/photos", data={"key": key(), "photo": [jpeg(s) for s in range(4)]},
                       headers=HX, content_type="multipart/form-data")
    assert four.status_code == 200
    session.rollback()
    assert session.scalar(select(func.count()).select_from(Photo)) == 4


def test_closing_a_blind_parcel_says_its_items_wait_for_a_match_not_that_all_was_received(client, world):
    login(client, "worker")
    _choose(client, world)
    client.post("/receive/blind", data={"code": "MYSTERY-2", "key": key()}, headers=HX)
    client.post("/receive/scan", data={"code": "036000291452", "key": key()}, headers=HX)
    page = client.get("/receive", headers=HX).get_data(as_text=True)
    parcel_id = int(page.split('name="parcel_id" value="')[1].split('"')[0])
    closed = client.post("/receive/close", data={"parcel_id": parcel_id, "key": key()}, headers=HX).get_data(as_text=True)
    assert "Parcel closed." in closed and "blind parcel" in closed.lower()
    assert "Everything expected was received" not in closed
    client.post("/receive/scan", data={"code": "RMA-5001", "key": key()}, headers=HX)
    page = client.get("/receive", headers=HX).get_data(as_text=True)
    parcel_id = int(page.split('name="parcel_id" value="')[1].split('"')[0])
    closed = client.post("/receive/close", data={"parcel_id": parcel_id, "key": key()}, headers=HX).get_data(as_text=True)
    assert "missing 1 × PHN-X1-128" in closed and "blind parcel" not in closed.lower()


def _heic(size: tuple[int, int] = (400, 300)) -> bytes:
    """A real HEIC, as an iPhone's camera saves it (pillow-heif's libheif encoder, HEVC), EXIF
    orientation 6 (held in portrait): the stored pixels are landscape, red on the left half."""
    import io

    import pillow_heif
    from PIL import Image

    im = Image.new("RGB", size, (20, 20, 220))
    im.paste((220, 20, 20), (0, 0, size[0] // 2, size[1]))
    exif = Image.Exif()
    exif[0x0112] = 6
    out = io.BytesIO()
    pillow_heif.from_pillow(im).save(out, quality=90, exif=exif.tobytes())
    return out.getvalue()


def test_an_iphone_heic_photo_is_accepted_and_kept_as_an_upright_jpeg(client, world, session):
    """Uploaded as an iPhone sends it (IMG_0001.HEIC, image/heic), it is saved like any other photo:
    re-encoded to a JPEG, turned upright, shown on the desk; a damaged HEIC is a 422 in words."""
    import io

    from PIL import Image

    from app.inspection.models import Photo

    login(client, "worker")
    _choose(client, world)
    client.post("/receive/scan", data={"code": "RMA-5001", "key": key()}, headers=HX)
    client.post("/receive/scan", data={"code": "036000291452", "key": key()}, headers=HX)
    heic = _heic()
    assert heic[4:12] == b"ftypheic"
    broken = client.post("/receive/units/1/photos", headers=HX, content_type="multipart/form-data",
                         data={"key": key(), "photo": [(io.BytesIO(heic[: len(heic) // 2]), "IMG_0002.HEIC", "image/heic")]})
    assert broken.status_code == 422
    assert "That photo is damaged or incomplete. Please take it again." in broken.get_data(as_text=True)
    resp = client.post("/receive/units/1/photos", headers=HX, content_type="multipart/form-data",
                       data={"key": key(), "photo": [(io.BytesIO(heic), "IMG_0001.HEIC", "image/heic")]})
    assert resp.status_code == 200
    session.rollback()
    photo = session.scalars(select(Photo)).one()
    assert (photo.unit_id, photo.width, photo.height) == (1, 300, 400)  # upright: portrait
    login(client, "super")
    shown = client.get(f"/desk/photos/{photo.id}")
    assert shown.status_code == 200 and shown.mimetype == "image/jpeg"
    with Image.open(io.BytesIO(shown.data)) as jpeg:
        assert jpeg.format == "JPEG" and jpeg.size == (300, 400) and not jpeg.getexif()
        top, bottom = jpeg.getpixel((150, 50)), jpeg.getpixel((150, 350))
    assert top[0] > 180 and bottom[2] > 180  # the left (red) half turned to the top


def test_a_lot_tracked_item_asks_for_its_lot_and_keeps_a_gs1_codes_expiry(client, world, session):
    """The face cream is lot-tracked: its plain barcode asks for the lot (a product code at the prompt
    is refused, writing nothing; CANCEL leaves it); the lot typed completes it. A GS1 code carrying the
    lot and the expiry (AI 10 and 17) is received at once, with both kept. The prompt in Spanish too."""
    login(client, "worker")
    _choose(client, world)
    client.post("/receive/scan", data={"code": "RMA-5001", "key": key()}, headers=HX)
    prompt = client.post("/receive/scan", data={"code": "04006381333931", "key": key()}, headers=HX)
    assert prompt.status_code == 200 and "HB-CREAM-50 is lot-tracked: scan or type its lot number." in prompt.get_data(as_text=True)
    wrong = client.post("/receive/scan", data={"code": "036000291452", "key": key()}, headers=HX)
    assert wrong.status_code == 422 and b"not a lot number" in wrong.data
    session.rollback()
    assert session.scalar(select(func.count()).select_from(ReturnUnit)) == 0
    k = key()
    typed = client.post("/receive/scan", data={"code": "l2406a", "key": k}, headers=HX)
    assert typed.status_code == 200 and b"LP00000001" in typed.data
    client.post("/receive/scan", data={"code": "l2406a", "key": k}, headers=HX)  # its answer lost, sent again: one unit
    session.rollback()
    assert session.scalar(select(func.count()).select_from(ReturnUnit)) == 1
    cancelled = client.post("/receive/scan", data={"code": "04006381333931", "key": key()}, headers=HX)
    assert b"lot-tracked" in cancelled.data
    assert b"Lot entry cancelled" in client.post("/receive/scan", data={"code": "CANCEL", "key": key()}, headers=HX).data
    gs1 = client.post("/receive/scan", data={"code": "(01)04006381333931(17)271231(10)L77", "key": key()}, headers=HX)
    assert gs1.status_code == 200 and b"LP00000002" in gs1.data
    spanish = client.post("/receive/scan", data={"code": "04006381333931", "key": key()},
                          headers={**HX, "Accept-Language": "es"})
    assert "HB-CREAM-50 se controla por lote: escanea o escribe su número de lote." in spanish.get_data(as_text=True)
    session.rollback()
    units = session.scalars(select(ReturnUnit).order_by(ReturnUnit.id)).all()
    assert [(u.lot, u.expiry and u.expiry.isoformat()) for u in units] == [("L2406A", None), ("L77", "2027-12-31")]
