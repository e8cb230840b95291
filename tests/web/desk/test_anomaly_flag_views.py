"""Anomaly flags on the screens (issue 18): the unit's case explains each flag and which one holds the
refund, the person who inspected sees why they cannot release it, the queues tag a flagged row, the
return's page lists its flags, and the handheld says a scan was received and flagged."""
from __future__ import annotations

import html
import re
from datetime import datetime, timezone
from decimal import Decimal

from sqlalchemy import func, select

from app.anomalies.domain import (CustomerFigures, PriorReturn, Shipment, customer_norm, empty_box, returned_before,
                                  swap)
from app.anomalies.models import AnomalyFlag
from app.anomalies.writer import flag_rows
from app.db import unit_of_work
from app.rows import write
from tests.conftest import login
from tests.helpers import counts, move_direct, new_key, refund_of
from tests.integration.anomalies.test_fraud_hold import inspect_and_confirm, same_order_again, twice_returned_phone
from tests.integration.anomalies.test_serial_flags import SERIAL, flags_of, receive_phone
from tests.integration.desk.test_desk_services import make_units

HX = {"HX-Request": "true"}
SPANISH = {"Accept-Language": "es-ES,es;q=0.9"}


def text(resp) -> str:  # type: ignore[no-untyped-def]
    """The page's text with its entities read (an explanation says "return's")."""
    assert resp.status_code == 200, resp.data[:300]
    return html.unescape(resp.get_data(as_text=True))


def every_kind(session, world) -> tuple[int, list]:  # type: ignore[no-untyped-def]
    """A phone received on RMA-5001 with one flag of each kind, written by the flags' writer: two on
    the unit, two on its return (every unit of the return)."""
    received = receive_phone(session, world, "RMA-5001")
    at = datetime(2026, 9, 1, tzinfo=timezone.utc)
    on_unit = [returned_before(SERIAL, PriorReturn("LP00000042", "available", "RMA-4000", at), shipped_on_order=False,
                               order_placed_at=None),
               swap(SERIAL, Shipment("SO-2002", False), shipped_on_order=False)]
    on_return = [customer_norm(CustomerFigures(6, 6, Decimal("900.00"), Decimal("0.10"), Decimal("50.00")),
                               factor=Decimal(3), min_returns=3),
                 empty_box("1Z999AA10123456784", "tape cut")]
    with unit_of_work(session):
        write(session, flag_rows(world.actor("worker"), on_unit, unit_id=received.unit_id, rma_id=world.rma.id,
                                 warehouse_id=world.wh.id)
              + flag_rows(world.actor("worker"), on_return, unit_id=None, rma_id=world.rma.id, warehouse_id=world.wh.id))
    return received.unit_id, [*on_unit, *on_return]


def test_the_case_page_explains_each_kind_of_flag(client, session, world):
    unit_id, flags = every_kind(session, world)
    login(client, "super")
    page = text(client.get(f"/desk/units/{unit_id}"))
    section = page[page.index('id="flags"'):page.index('id="decide-h"')]
    for label, flag in zip(("Returned before", "Possible swap", "Customer above the norm", "Empty box"), flags):
        assert f"<strong>{label}</strong>" in section and flag.explanation in section
    assert section.count("holds the refund") == 4 and section.count("on the whole return") == 2
    assert section.count("Raised ") == 4 and "by Worker." in section


def test_the_case_page_says_the_flags_in_spanish(client, session, world):
    unit_id, _flags = every_kind(session, world)
    login(client, "super")
    page = text(client.get(f"/desk/units/{unit_id}", headers=SPANISH))
    section = page[page.index('id="flags"'):page.index('id="decide-h"')]
    for label in ("Devuelto antes", "Posible cambiazo", "Cliente por encima de la norma", "Caja vacía"):
        assert f"<strong>{label}</strong>" in section, label
    assert "el número de serie SN-PHONE-0001 ya se devolvió antes, en RMA-4000" in section
    assert "se envió en el pedido SO-2002, a otro cliente" in section
    assert "el paquete 1Z999AA10123456784 se notificó vacío («tape cut»)" in section
    assert "este cliente está muy por encima de la norma del comercio (más de 3 veces)" in section
    assert "retiene el reembolso" in section and "returned before" not in section
    steps = re.findall(r'<span class="tl-title">([^<]*)</span>', page)
    assert any(t.endswith("marcada: Devuelto antes") for t in steps), steps  # the timeline tells each flag too
    # the unit's state, its serial's check and the packaging to pick are named in Spanish as well
    assert '<span class="state state-received">recibido</span>' in page
    assert ">precintado</option>" in page and ">sealed</option>" not in page


def test_the_inspector_sees_why_they_cannot_release_and_another_supervisor_releases_and_clears(client, session, world):
    unit_id = twice_returned_phone(session, world)
    inspect_and_confirm(session, world, unit_id, inspector="super")
    refund = refund_of(session, unit_id)
    session.rollback()
    login(client, "super")
    mine = text(client.get(f"/desk/units/{unit_id}"))
    assert "Held because: fraud flag: returned before." in mine
    assert ("A fraud flag holds this refund and you inspected the unit: only a supervisor who did not inspect it "
            "may release it.") in mine
    assert "Approve refund" not in mine
    client.post("/logout")
    login(client, "super2")
    theirs = text(client.get(f"/desk/units/{unit_id}"))
    assert "Held because: fraud flag: returned before." in theirs and "Approve refund" in theirs
    assert "a second refund for the same item, check it" in theirs
    form = {"decision": "approve", "reason": "checked the serial's history", "key": new_key(),
            "version": refund.version, "context": "unit", "unit_id": unit_id}
    after = text(client.post(f"/desk/refunds/{refund.id}/decide", headers=HX, data=form))
    cleared = [(f.id, f.cleared_at, f.cleared_by_id) for f in flags_of(session, unit_id)]
    before = counts(session)
    retried = text(client.post(f"/desk/refunds/{refund.id}/decide", headers=HX, data=form))  # a retry: one effect
    assert counts(session) == before and [(f.id, f.cleared_at, f.cleared_by_id) for f in flags_of(session, unit_id)] == cleared
    assert "flag-cleared" in retried and refund_of(session, unit_id).status == "released"
    flag = after[after.index('id="flags"'):after.index('id="decide-h"')]
    assert "flag-cleared" in flag and ">cleared<" in flag and "Cleared " in flag and "by Super2." in flag
    assert "holds the refund" not in flag
    assert "Held because: fraud flag: returned before." in after  # what held it, said after the decision too


def test_a_queue_row_is_tagged_with_its_units_open_flag(client, session, world):
    flagged = twice_returned_phone(session, world)
    inspect_and_confirm(session, world, flagged, inspector="super")
    [plain] = make_units(session, world, 1, pending_refund=True, paid="300.00")  # held over the threshold, unflagged
    session.rollback()
    login(client, "super2")
    queue = text(client.get("/desk/refunds"))
    rows = dict(re.findall(r'<tr id="row-refund-(\d+)"(.*?)</tr>', queue, re.S))
    tagged = rows[str(refund_of(session, flagged).id)]
    assert 'class="tag tag-warn flag-tag" data-flag="returned_before">Fraud flag: returned before</span>' in tagged
    assert "flag-tag" not in rows[str(refund_of(session, plain).id)]


def test_the_return_page_lists_its_flags(client, session, world):
    unit_id, flags = every_kind(session, world)
    login(client, "super")
    page = text(client.get(f"/desk/returns/{world.rma.id}"))
    section = page[page.index('id="flags"'):page.index('id="rl-h"')]
    assert all(f.explanation in section for f in flags)
    assert section.count('class="lpn-inline"') == 2 and section.count("on the whole return") == 2


def test_the_handheld_says_a_scan_was_received_and_flagged(client, session, world):
    first = receive_phone(session, world, "RMA-5001")
    move_direct(session, world.actor("worker"), first.unit_id, "available")
    again = same_order_again(session, world).number
    login(client, "worker")
    client.post("/receive/warehouse", data={"warehouse_id": world.wh.id}, headers=HX)
    client.post("/receive/scan", data={"code": again, "key": new_key()}, headers=HX)
    client.post("/receive/scan", data={"code": "00614141999996", "key": new_key()}, headers=HX)
    scanned = text(client.post("/receive/scan", data={"code": SERIAL, "key": new_key()}, headers=HX))
    notice = re.search(r'<p class="flag-notice" role="alert" data-flag="returned_before">(.*?)</p>', scanned, re.S)
    assert notice is not None
    words = " ".join(re.sub(r"<[^>]+>", "", notice.group(1)).split())
    assert words.startswith("Received and flagged: serial SN-PHONE-0001 was returned before, on RMA-5001 (")
    assert words.endswith("). A supervisor will check the refund.")
    assert "result-warn" in scanned


def test_the_handheld_says_it_in_spanish_and_a_retry_flags_once(client, session, world):
    first = receive_phone(session, world, "RMA-5001")
    move_direct(session, world.actor("worker"), first.unit_id, "available")
    again = same_order_again(session, world).number
    login(client, "worker")
    client.post("/receive/warehouse", data={"warehouse_id": world.wh.id}, headers={**HX, **SPANISH})
    client.post("/receive/scan", data={"code": again, "key": new_key()}, headers={**HX, **SPANISH})
    client.post("/receive/scan", data={"code": "00614141999996", "key": new_key()}, headers={**HX, **SPANISH})
    scan = {"code": SERIAL, "key": new_key()}
    for _ in range(2):  # the second is a retry with the same key: replayed, the notice said again, one flag
        scanned = text(client.post("/receive/scan", data=scan, headers={**HX, **SPANISH}))
        notice = re.search(r'<p class="flag-notice"[^>]*>(.*?)</p>', scanned, re.S)
        assert notice is not None
        words = " ".join(re.sub(r"<[^>]+>", "", notice.group(1)).split())
        assert words.startswith("Recibido y marcado: el número de serie SN-PHONE-0001 ya se devolvió antes, en RMA-5001 (")
        assert words.endswith("Un supervisor revisará el reembolso.")
    assert session.scalar(select(func.count()).select_from(AnomalyFlag)) == 1
    session.rollback()
