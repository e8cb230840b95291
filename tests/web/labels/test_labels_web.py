"""Label views through the Flask client: pages vs fragments, printing via the web endpoints,
clear refusals (never a 500), role and partner scoping, escaping of hostile text."""
from __future__ import annotations

import contextlib
import re
import time
import uuid
from decimal import Decimal

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.catalog.models import Product
from app.db import unit_of_work
from app.labels.models import Printer, PrintJob
from app.ledger.models import ReturnUnit
from tests.conftest import login
from tests.fakes import closed_port, unresponsive_port
from tests.helpers import add_open_box_variant, add_printer, receive

HX = {"HX-Request": "true", "HX-Current-URL": "http://localhost/receiving/scan"}


def key() -> str:
    """A fresh idempotency key (one tap)."""
    return uuid.uuid4().hex


def jobs(session: Session) -> list[PrintJob]:
    """All print jobs, oldest first (read fresh)."""
    session.rollback()
    out = list(session.scalars(select(PrintJob).order_by(PrintJob.id)).all())
    session.rollback()
    return out


def text(resp) -> str:  # type: ignore[no-untyped-def]
    """The response body as text."""
    return resp.get_data(as_text=True)


# --- sending from the handheld ------------------------------------------------------------


def test_send_via_web_endpoint(app, client, session, world, fake_printer):  # type: ignore[no-untyped-def]
    """htmx POST /send: the printer gets the whole label, a PrintJob is written, the fragment says so."""
    unit = receive(session, world)
    printer = add_printer(session, world, fake_printer.port)
    login(client, "worker")
    resp = client.post(f"/labels/unit/{unit.id}/send", headers=HX,
                       data={"printer_id": printer.id, "kind": "lpn", "idempotency_key": key()})
    assert resp.status_code == 200, text(resp)
    body = text(resp)
    assert body.lstrip().startswith("<section") and "<html" not in body  # the fragment, not the page
    assert f"LPN label {unit.lpn} sent to Dock Zebra" in body
    assert "dockhand:ok" in resp.headers["HX-Trigger"] and "HX-Request" in resp.headers["Vary"]
    [zpl] = fake_printer.wait_for(1)
    zpl_text = zpl.decode()
    assert zpl_text.startswith("^XA") and zpl_text.endswith("^XZ") and f"^FD{unit.lpn}^FS" in zpl_text
    [job] = jobs(session)
    assert (job.channel, job.printer_id, job.unit_id, job.actor_id) == ("zpl_socket", printer.id, unit.id,
                                                                          world.users["worker"].id)
    # The answer carries the next tap's fresh key and asks for a reason next time.
    assert 'name="reason"' in body and "Reprint label" in body


def test_send_to_remembered_printer_cookie(app, client, session, world, fake_printer):  # type: ignore[no-untyped-def]
    """Choosing a printer sets the cookie; the fragment then sends there with one tap."""
    unit = receive(session, world)
    printer = add_printer(session, world, fake_printer.port)
    login(client, "worker")
    assert "hx-post" not in text(client.get(f"/labels/unit/{unit.id}"))  # no printer yet: browser print
    resp = client.post("/labels/printer", data={"choice": f"p:{printer.id}", "next": f"/labels/unit/{unit.id}"})
    assert resp.status_code == 303 and resp.headers["Location"].endswith(f"/labels/unit/{unit.id}")
    assert f"dockhand_printer=p:{printer.id}" in resp.headers["Set-Cookie"]
    page = text(client.get(f"/labels/unit/{unit.id}"))
    assert f'hx-post="/labels/unit/{unit.id}/send"' in page and "To Dock Zebra" in page
    tap = re.search(r'name="idempotency_key" value="([0-9a-f]{32})"', page).group(1)  # type: ignore[union-attr]
    resp = client.post(f"/labels/unit/{unit.id}/send", headers=HX, data={"kind": "lpn", "idempotency_key": tap})
    assert resp.status_code == 200 and len(fake_printer.wait_for(1)) == 1


@pytest.mark.parametrize("failure", ["refused", "timeout"])
def test_failing_printer_shows_error_and_records_nothing(app, client, session, world, failure):  # type: ignore[no-untyped-def]
    """A printer that refuses or does not answer: one clear error in the fragment, no PrintJob."""
    app.config["LABEL_PRINTER_TIMEOUT"] = 0.5
    unit = receive(session, world)
    with contextlib.ExitStack() as stack:
        port = closed_port() if failure == "refused" else stack.enter_context(unresponsive_port())
        printer = add_printer(session, world, port)
        login(client, "worker")
        resp = client.post(f"/labels/unit/{unit.id}/send", headers=HX,
                           data={"printer_id": printer.id, "kind": "lpn", "idempotency_key": key()})
    assert resp.status_code == 503
    body = text(resp)
    assert "The printer did not take the label. Nothing was printed or recorded" in body
    assert 'class="msg msg-error' in body
    assert "dockhand:error" in resp.headers["HX-Trigger"]
    assert jobs(session) == []


def test_double_submitted_send_prints_once(app, client, session, world, fake_printer):  # type: ignore[no-untyped-def]
    """The same key twice: one delivery, one PrintJob; the second answer says it was a repeat."""
    unit = receive(session, world)
    printer = add_printer(session, world, fake_printer.port)
    login(client, "worker")
    form = {"printer_id": printer.id, "kind": "lpn", "idempotency_key": key()}
    first = client.post(f"/labels/unit/{unit.id}/send", headers=HX, data=form)
    second = client.post(f"/labels/unit/{unit.id}/send", headers=HX, data=form)
    assert first.status_code == second.status_code == 200
    assert "repeat" in text(second)
    time.sleep(0.2)
    assert len(fake_printer.jobs) == 1 and len(jobs(session)) == 1


def test_reprint_without_reason_refused(app, client, session, world, fake_printer):  # type: ignore[no-untyped-def]
    """A second print without a reason is refused with a message; with a reason it prints and is recorded."""
    unit = receive(session, world)
    printer = add_printer(session, world, fake_printer.port)
    login(client, "worker")
    url = f"/labels/unit/{unit.id}/send"
    assert client.post(url, headers=HX, data={"printer_id": printer.id, "idempotency_key": key()}).status_code == 200
    refused = client.post(url, headers=HX, data={"printer_id": printer.id, "idempotency_key": key()})
    assert refused.status_code == 422 and "choose a reason for the reprint" in text(refused)
    ok = client.post(url, headers=HX, data={"printer_id": printer.id, "idempotency_key": key(),
                                            "reason": "Label damaged or unreadable"})
    assert ok.status_code == 200
    assert [(j.reprint, j.reason) for j in jobs(session)] == [(False, None), (True, "Label damaged or unreadable")]
    history = text(client.get(f"/labels/unit/{unit.id}/history"))
    assert "Label damaged or unreadable" in history and "First print" in history and "Dock Zebra" in history


def test_send_without_htmx_renders_the_page(app, client, session, world, fake_printer):  # type: ignore[no-untyped-def]
    """Without JavaScript the same endpoint answers with the whole page."""
    unit = receive(session, world)
    printer = add_printer(session, world, fake_printer.port)
    login(client, "worker")
    resp = client.post(f"/labels/unit/{unit.id}/send", data={"printer_id": printer.id, "idempotency_key": key()})
    assert resp.status_code == 200 and "<html" in text(resp) and "sent to Dock Zebra" in text(resp)


# --- browser print page and ZPL files -----------------------------------------------------


@pytest.mark.parametrize(("stock", "size"), [("4x6", "4in 6in"), ("2x1", "2in 1in"), ("a4", "A4")])
def test_print_page_matches_stock(app, client, session, world, stock, size):  # type: ignore[no-untyped-def]
    """The page's @page size is the stock; GET records nothing; autoprint only when asked."""
    unit = receive(session, world)
    login(client, "worker")
    page = text(client.get(f"/labels/unit/{unit.id}/print?stock={stock}"))
    assert f"@page {{ size: {size}; margin: 0; }}" in page
    assert page.count('<svg xmlns="http://www.w3.org/2000/svg" class="barcode"') == 1
    assert f'aria-label="Barcode {unit.lpn}"' in page and "data-autoprint" not in page
    assert "data-autoprint" in text(client.get(f"/labels/unit/{unit.id}/print?stock={stock}&autoprint=1"))
    assert jobs(session) == []


def test_browser_print_records_then_opens_dialog(app, client, session, world):  # type: ignore[no-untyped-def]
    """POST records a browser print and redirects to the autoprint page; a reprint needs a reason."""
    unit = receive(session, world)
    login(client, "worker")
    url = f"/labels/unit/{unit.id}/print"
    resp = client.post(url, data={"stock": "2x1", "kind": "lpn", "idempotency_key": key(), "next": "/receiving/scan"})
    assert resp.status_code == 303
    assert "autoprint=1" in resp.headers["Location"] and "stock=2x1" in resp.headers["Location"]
    again = client.post(url, data={"stock": "2x1", "kind": "lpn", "idempotency_key": key()})
    assert again.status_code == 422 and "choose a reason" in text(again) and 'name="reason"' in text(again)
    ok = client.post(url, data={"stock": "a4", "start": "7", "kind": "lpn", "idempotency_key": key(),
                                "reason": "Wrong label size"})
    assert ok.status_code == 303 and "start=7" in ok.headers["Location"]
    assert [(j.channel, j.stock, j.reprint) for j in jobs(session)] == [("browser", "2x1", False), ("browser", "a4", True)]


def test_zpl_download_and_preview(app, client, session, world):  # type: ignore[no-untyped-def]
    """GET .zpl is an unrecorded preview; POST .zpl records a download; A4 has no ZPL."""
    unit = receive(session, world)
    login(client, "worker")
    preview = client.get(f"/labels/unit/{unit.id}.zpl?stock=2x1")
    assert preview.status_code == 200 and preview.mimetype == "application/zpl"
    assert f'filename="{unit.lpn}-lpn-2x1.zpl"' in preview.headers["Content-Disposition"]
    assert text(preview).startswith("^XA") and "^PW406" in text(preview) and jobs(session) == []
    download = client.post(f"/labels/unit/{unit.id}.zpl", data={"zpl_stock": "4x6", "stock": "a4", "kind": "lpn",
                                                                 "idempotency_key": key()})
    assert download.status_code == 200 and "^PW812" in text(download) and f"^FD{unit.lpn}^FS" in text(download)
    assert [(j.channel, j.stock) for j in jobs(session)] == [("zpl_download", "4x6")]
    refused = client.get(f"/labels/unit/{unit.id}.zpl?stock=a4")
    assert refused.status_code == 422 and "A4 sheets print from the browser" in text(refused)


def test_hostile_product_name_is_escaped(app, client, session, world):  # type: ignore[no-untyped-def]
    """Markup and ZPL control characters in names are escaped in HTML and in ZPL."""
    with unit_of_work(session):
        evil = Product(sku="EVIL<b>~JR", name=("^XA~JR<script>alert(1)</script>&" + "Ω" * 300)[:200],
                       category="apparel", unit_value=Decimal("1"))
        session.add(evil)
    unit = receive(session, world, product=evil)
    login(client, "worker")
    for stock in ("4x6", "2x1", "a4"):
        page = text(client.get(f"/labels/unit/{unit.id}/print?stock={stock}"))
        assert "<script>alert" not in page and "<b>" not in page
        assert "EVIL&lt;b&gt;~JR" in page
        if stock != "2x1":
            assert "^XA~JR&lt;script&gt;alert(1)" in page
    unit_page = text(client.get(f"/labels/unit/{unit.id}"))
    assert "<script>alert" not in unit_page and "&lt;script&gt;" in unit_page
    for stock in ("4x6", "2x1"):
        zpl = text(client.get(f"/labels/unit/{unit.id}.zpl?stock={stock}"))
        assert zpl.count("^XA") == zpl.count("^XZ") == 1 and "~" not in zpl
    assert "_5EXA_7EJR<script>" in text(client.get(f"/labels/unit/{unit.id}.zpl?stock=4x6"))


def test_sku_label_page_carries_product_barcode(app, client, session, world):  # type: ignore[no-untyped-def]
    """The SKU label encodes the product's barcode as UPC-A digits (stored as GTIN-14)."""
    unit = receive(session, world)
    login(client, "worker")
    page = text(client.get(f"/labels/unit/{unit.id}/print?kind=sku"))
    assert 'aria-label="Barcode 036000291452"' in page and unit.lpn in page


# --- bad input: clear messages, never a 500 -----------------------------------------------


BAD_INPUTS = [  # (method, path, form, status, message)
    ("get", "/labels/unit/{id}/print?stock=3x5", None, 422, "Unknown label size"),
    ("get", "/labels/unit/{id}/print?kind=pallet", None, 422, "Unknown label kind"),
    ("get", "/labels/unit/{id}/print?stock=a4&start=99", None, 422, "sheet position"),
    ("get", "/labels/unit/{id}/print?stock=a4&start=x", None, 422, "sheet position"),
    ("get", "/labels/unit/999999/print", None, 404, "No such unit"),
    ("get", "/labels/unit/abc/print", None, 404, "Nothing here"),
    ("get", "/labels/unit/{id}.zpl?stock=a4", None, 422, "A4 sheets"),
    ("post", "/labels/unit/{id}/send", {"printer_id": "abc", "idempotency_key": "k" * 12}, 422, "The printer must be"),
    ("post", "/labels/unit/{id}/send", {"idempotency_key": "k" * 12}, 422, "Choose a printer first"),
    ("post", "/labels/unit/{id}/send", {"printer_id": "424242", "idempotency_key": "k" * 12}, 404, "No such printer"),
    ("post", "/labels/unit/{id}/send", {"printer_id": "{printer}", "kind": "x", "idempotency_key": "k" * 12}, 422,
     "Unknown label kind"),
    ("post", "/labels/unit/{id}/send", {"printer_id": "{printer}", "stock": "a4", "idempotency_key": "k" * 12}, 422,
     "A4 sheets"),
    ("post", "/labels/unit/{id}/send", {"printer_id": "{printer}"}, 422, "idempotency key"),
    ("post", "/labels/unit/{id}/send", {"printer_id": "{printer}", "idempotency_key": "bad key!"}, 422,
     "idempotency key"),
    ("post", "/labels/unit/{id}/print", {"stock": "4x6", "idempotency_key": ""}, 422, "idempotency key"),
    ("post", "/labels/unit/{id}.zpl", {"stock": "9x9", "idempotency_key": "k" * 12}, 422, "Unknown label size"),
    ("post", "/labels/printer", {"choice": "nonsense"}, 422, "Choose a printer"),
    ("post", "/labels/printer", {"choice": "p:424242"}, 404, "No such printer"),
    ("get", "/labels/?lpn=LP99999999", None, 404, "No unit with LPN"),
]


def test_bad_input_gets_a_clear_message(app, client, session, world):  # type: ignore[no-untyped-def]
    """Every malformed request is refused with a message a person can act on, and writes nothing."""
    unit = receive(session, world)
    printer = add_printer(session, world, 9)
    login(client, "worker")
    for method, path, data, status, message in BAD_INPUTS:
        url = path.replace("{id}", str(unit.id))
        if data:
            data = {k: (str(printer.id) if v == "{printer}" else v) for k, v in data.items()}
        resp = getattr(client, method)(url, data=data, headers=HX if "/send" in url else {})
        assert resp.status_code == status, (method, url, data, text(resp)[:2000])
        assert message in text(resp), (method, url, data)
    assert jobs(session) == []


def test_lookup_by_lpn(app, client, session, world):  # type: ignore[no-untyped-def]
    """The labels start page finds a unit by LPN (scoped: a partner cannot find another org's unit)."""
    unit = receive(session, world)
    login(client, "worker")
    resp = client.get(f"/labels/?lpn={unit.lpn.lower()}")
    assert resp.status_code == 302 and resp.headers["Location"].endswith(f"/labels/unit/{unit.id}")
    client.post("/logout")
    login(client, "partner")
    assert client.get(f"/labels/?lpn={unit.lpn}").status_code == 404


# --- roles and scoping --------------------------------------------------------------------


@pytest.mark.parametrize(("username", "status"), [("worker", 403), ("super", 403), ("partner", 403), ("admin", 200)])
def test_printer_admin_is_admin_only(app, client, session, world, username, status):  # type: ignore[no-untyped-def]
    """Only admins may see or change the printer set-up, checked on the server."""
    printer = add_printer(session, world, 9100)
    login(client, username)
    assert client.get("/labels/printers").status_code == status
    assert client.get(f"/labels/printers/{printer.id}").status_code == status
    resp = client.post("/labels/printers", data={"name": "Sneaky", "warehouse_id": world.wh.id, "host": "10.1.1.1",
                                                 "port": "9100", "stock": "4x6", "active": "y",
                                                 "idempotency_key": key()})
    assert resp.status_code == (303 if status == 200 else 403)
    session.rollback()
    assert session.scalar(select(func.count()).select_from(Printer).where(Printer.name == "Sneaky")) == (
        1 if status == 200 else 0)
    session.rollback()


def test_admin_adds_edits_and_deactivates_printers(app, client, session, world):  # type: ignore[no-untyped-def]
    """The admin form validates, saves, renames and switches a printer off."""
    login(client, "admin")
    form = {"name": "Dock 2", "warehouse_id": world.wh.id, "host": "192.168.40.12", "port": "9100", "stock": "2x1",
            "active": "y", "idempotency_key": key()}
    assert client.post("/labels/printers", data=form).status_code == 303
    bad_port = client.post("/labels/printers", data={**form, "name": "X", "port": "99999", "idempotency_key": key()})
    assert bad_port.status_code == 422 and "Use a port from 1 to 65535" in text(bad_port)
    bad_host = client.post("/labels/printers", data={**form, "name": "X", "host": "two words", "idempotency_key": key()})
    assert bad_host.status_code == 422 and "not a valid host" in text(bad_host)
    dup = client.post("/labels/printers", data={**form, "idempotency_key": key()})
    assert dup.status_code == 422 and "already has a printer called Dock 2" in text(dup)
    for host in ("127.0.0.1", "169.254.169.254", "203.0.113.9", "printer.invalid"):  # one message for all
        refused = client.post("/labels/printers", data={**form, "name": "Z", "host": host, "idempotency_key": key()})
        assert refused.status_code == 422 and "Printers must be on the warehouse network" in text(refused), host
    bad_wh = client.post("/labels/printers", data={**form, "name": "Y", "warehouse_id": "999", "idempotency_key": key()})
    assert bad_wh.status_code == 422
    printer = session.scalars(select(Printer).where(Printer.name == "Dock 2")).one()
    session.rollback()
    edit_page = text(client.get(f"/labels/printers/{printer.id}"))
    assert 'value="192.168.40.12"' in edit_page
    off = {k: v for k, v in form.items() if k != "active"}
    resp = client.post(f"/labels/printers/{printer.id}", data={**off, "name": "Dock 2b", "idempotency_key": key()})
    assert resp.status_code == 303
    session.rollback()
    saved = session.get(Printer, printer.id)
    assert (saved.name, saved.active) == ("Dock 2b", False)
    session.rollback()
    assert client.get("/labels/printers/999999").status_code == 404
    listing = text(client.get("/labels/printers"))
    assert "Dock 2b" in listing and "off" in listing


def test_partner_is_scoped(app, client, session, world, fake_printer):  # type: ignore[no-untyped-def]
    """A partner prints their own units only: another org's unit is 404 on every label URL."""
    ours = receive(session, world, warehouse=world.wh3pl)
    theirs = receive(session, world)
    reno = add_printer(session, world, fake_printer.port, warehouse=world.wh3pl, name="Reno Zebra")
    main = add_printer(session, world, fake_printer.port, name="Main Zebra")
    login(client, "partner")
    for url in (f"/labels/unit/{theirs.id}", f"/labels/unit/{theirs.id}/print", f"/labels/unit/{theirs.id}.zpl",
                f"/labels/unit/{theirs.id}/history"):
        assert client.get(url).status_code == 404, url
    for url, data in ((f"/labels/unit/{theirs.id}/send", {"printer_id": reno.id}),
                      (f"/labels/unit/{theirs.id}/print", {"stock": "4x6"}),
                      (f"/labels/unit/{theirs.id}.zpl", {"stock": "4x6"})):
        assert client.post(url, data={**data, "idempotency_key": key()}).status_code == 404, url
    # Their own unit, but another org's printer: not found either; the picker lists only their printer.
    resp = client.post(f"/labels/unit/{ours.id}/send", headers=HX, data={"printer_id": main.id, "idempotency_key": key()})
    assert resp.status_code == 404 and "No such printer" in text(resp)
    assert client.post("/labels/printer", data={"choice": f"p:{main.id}"}).status_code == 404
    picker = text(client.get("/labels/printer"))
    assert "Reno Zebra" in picker and "Main Zebra" not in picker
    ok = client.post(f"/labels/unit/{ours.id}/send", headers=HX, data={"printer_id": reno.id, "idempotency_key": key()})
    assert ok.status_code == 200
    assert len(fake_printer.wait_for(1)) == 1 and len(jobs(session)) == 1


def test_signed_out_and_admin_cannot_print(app, client, session, world):  # type: ignore[no-untyped-def]
    """Printing needs a signed-in floor role."""
    unit = receive(session, world)
    assert client.get(f"/labels/unit/{unit.id}/print").status_code == 302  # to the login page
    login(client, "admin")
    assert client.get(f"/labels/unit/{unit.id}/print").status_code == 403
    assert client.post(f"/labels/unit/{unit.id}/send", data={"printer_id": 1, "idempotency_key": key()}).status_code == 403


def test_fragment_for_other_screens(app, client, session, world, fake_printer):  # type: ignore[no-untyped-def]
    """The fragment renders for any unit: a remembered printer at another warehouse falls back to the browser."""
    unit = receive(session, world)
    reno = add_printer(session, world, fake_printer.port, warehouse=world.wh3pl, name="Reno Zebra")
    login(client, "worker")
    client.post("/labels/printer", data={"choice": f"p:{reno.id}"})
    page = text(client.get(f"/labels/unit/{unit.id}", headers={"HX-Request": "true"}))
    assert page.lstrip().startswith("<section") and "Reno Zebra is at FastLane Reno" in page
    assert "hx-post" not in page and 'name="stock" value="4x6"' in page
    client.post("/labels/printer", data={"choice": "browser:a4"})
    page = text(client.get(f"/labels/unit/{unit.id}"))
    assert 'name="stock" value="a4"' in page and 'name="zpl_stock" value="4x6"' in page


def test_fragment_renders_nothing_without_print_permission(app, session, world):  # type: ignore[no-untyped-def]
    """Included in a screen seen by someone who may not print, the fragment renders nothing (no dead buttons)."""
    from flask import render_template_string

    unit = receive(session, world)
    with app.test_request_context("/"):
        loaded = session.get(ReturnUnit, unit.id)
        assert render_template_string('{% include "labels/_print_actions.html" %}', unit=loaded).strip() == ""


def test_fragment_ignores_the_including_screens_variables(app, client, session, world):  # type: ignore[no-untyped-def]
    """Screens that include the fragment have their own `result` / `error`: they must not leak into it."""
    from flask import render_template_string

    unit = receive(session, world)
    login(client, "worker")
    with client.application.test_request_context("/"):
        from flask_login import login_user

        from app.auth.models import User

        login_user(session.get(User, world.users["worker"].id))
        html = render_template_string('{% include "labels/_print_actions.html" %}', unit=session.get(ReturnUnit, unit.id),
                                      result={"kind": "unit"}, error="not mine")
    assert "Print label" in html and "'kind'" not in html and "not mine" not in html and "msg-success" not in html


def test_fragment_offers_the_open_box_sku_label_and_asks_why_again(app, client, session, world):  # type: ignore[no-untyped-def]
    """A unit graded not-new is offered its open-box variant's SKU label; once both labels were printed,
    both buttons say Reprint and a reason is asked. A unit still sold as new gets no SKU button, but a
    print of its own SKU label still counts as printed before."""
    add_open_box_variant(session, world)
    regraded = receive(session, world, grade="C", packaging="opened")
    as_new = receive(session, world, grade="A", packaging="sealed")
    login(client, "worker")
    page = text(client.get(f"/labels/unit/{regraded.id}", headers=HX))
    assert ">Print label</button>" in page and ">Print SKU label · TEE-BLU-M-OB</button>" in page
    assert 'name="reason"' not in page and page.count('name="kind" value="sku"') == 2  # print and ZPL
    for kind in ("lpn", "sku"):
        resp = client.post(f"/labels/unit/{regraded.id}/print", data={"kind": kind, "stock": "4x6", "idempotency_key": key()})
        assert resp.status_code == 303
    assert [(j.kind, j.barcode_value) for j in jobs(session)] == [("lpn", regraded.lpn), ("sku", "012345678905")]
    page = text(client.get(f"/labels/unit/{regraded.id}", headers=HX))
    assert ">Reprint label</button>" in page and ">Reprint SKU label · TEE-BLU-M-OB</button>" in page
    assert "(both labels printed before)" in page and 'name="reason"' in page
    page = text(client.get(f"/labels/unit/{as_new.id}", headers=HX))
    assert ">Print label</button>" in page and 'value="sku"' not in page and 'name="reason"' not in page
    client.post(f"/labels/unit/{as_new.id}/print", data={"kind": "sku", "stock": "4x6", "idempotency_key": key()})
    page = text(client.get(f"/labels/unit/{as_new.id}", headers=HX))
    assert "(SKU label printed before)" in page and ">Print label</button>" in page and 'value="sku"' not in page


def test_fragment_reads_its_labels_in_one_statement(app, session, world):  # type: ignore[no-untyped-def]
    """The block is rendered after every inspection and disposition: with the unit (and its product)
    loaded, working out what it offers is one statement, not one per label and one for the counts."""
    from flask_login import login_user
    from sqlalchemy import event

    from app.auth.models import User
    from app.db import db
    from app.labels.services import UNIT_PLACE
    from app.labels.views import label_actions

    add_open_box_variant(session, world)
    unit = receive(session, world, grade="B", packaging="opened")
    with app.test_request_context("/"):
        login_user(db.session.get(User, world.users["worker"].id))
        loaded = db.session.get(ReturnUnit, unit.id, options=UNIT_PLACE)
        statements: list[str] = []

        def count(conn, cursor, statement, *args):  # type: ignore[no-untyped-def]
            statements.append(statement)

        event.listen(db.engine, "before_cursor_execute", count)
        try:
            la = label_actions(loaded)
        finally:
            event.remove(db.engine, "before_cursor_execute", count)
    assert (la.sku, la.sku_barcode, la.reprint_lpn, la.reprint_sku) == ("TEE-BLU-M-OB", "012345678905", False, False)
    assert len(statements) == 1, statements
