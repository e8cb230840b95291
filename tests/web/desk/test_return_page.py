"""A return's page and a customer's through the Flask client: the role matrix, scope (a partner outside
it gets 404, as for a return that does not exist), no money for partners, and the merged timeline
told in words, each step once."""
from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

import pytest

from app.db import unit_of_work
from app.ledger.models import ReturnUnit
from tests.conftest import login
from tests.integration.desk.test_desk_services import row_counts

HX = {"HX-Request": "true"}
ROLES = ("worker", "super", "admin", "partner", "outsider")


def _routes(f: dict[str, Any]) -> list[tuple[str, str]]:
    return [("return", f"/desk/returns/{f['rma_3pl']}"), ("customer", f"/desk/customers/{f['customer']}")]


@pytest.mark.parametrize("role", ROLES)
def test_role_matrix(client, session, world, found, role):
    """Workers, supervisors and partners may look up (partners within their scope); admins may not;
    nothing a look-up answers, allowed or refused, writes a row."""
    login(client, role)
    before = row_counts(session)
    for name, url in _routes(found):
        for headers in ({}, HX):
            resp = client.get(url, headers=headers)
            if role == "admin":
                assert resp.status_code == 403, (name, resp.status_code)
            elif role == "outsider" and name in ("return", "customer"):
                assert resp.status_code == 404, (name, resp.status_code)
            else:
                assert resp.status_code in (200, 302), (role, name, resp.status_code)
            assert row_counts(session) == before, (role, name)


def test_anonymous_is_sent_to_sign_in(client, found):
    for _, url in _routes(found):
        resp = client.get(url)
        assert resp.status_code == 302 and "/login" in resp.headers["Location"]


def test_partner_outside_its_scope_gets_what_a_missing_return_gets(client, found):
    login(client, "partner")
    outside = client.get(f"/desk/returns/{found['rma']}")
    missing = client.get("/desk/returns/999999")
    assert outside.status_code == missing.status_code == 404
    # The same page but for the id asked for (the header's warehouse switch returns to this URL).
    # (The header's forms carry a CSRF token signed with the second it was made: not the page's content.)
    def same(data: bytes, path: bytes) -> bytes:
        return re.sub(rb'(name="csrf_token" value=|"X-CSRFToken": )"[^"]+"', rb"\1", data.replace(path, b"/desk/returns/N"))
    assert same(outside.data, f"/desk/returns/{found['rma']}".encode()) == same(missing.data, b"/desk/returns/999999")
    assert client.get("/desk/returns/99999999999").status_code == 404  # past a 32-bit id
    # The customer's page lists only the returns in scope.
    page = client.get(f"/desk/customers/{found['customer']}").get_data(as_text=True)
    assert "RMA-7001" in page and "RMA-5001" not in page


def test_a_partner_with_no_return_of_a_customer_gets_404(client, session, world, found):
    login(client, "outsider")
    assert client.get(f"/desk/customers/{found['customer']}").status_code == 404
    assert client.get("/desk/customers/999999").status_code == 404


def test_return_page_tells_one_readable_timeline(client, session, world, found):
    login(client, "super")
    page = client.get(f"/desk/returns/{found['rma']}").get_data(as_text=True)
    lpn = found["phone_lpn"]
    steps = re.findall(r'<span class="tl-title">([^<]*)</span>', page)
    assert steps, page
    text = "\n".join(steps)
    assert f"Received {lpn} (Phone X1 128GB) at Main DC dock (DOCK-01)" in text
    assert "Parcel 1 opened at Main DC" in text
    assert f"Inspected {lpn} (Phone X1 128GB): grade A, packaging opened" in text
    assert f"Exception: Serial mismatch on {lpn} (Phone X1 128GB)" in text
    assert f"{lpn} (Phone X1 128GB) moved to quarantine at Main DC quarantine (QUARANTINE-01)" in text
    assert "Return RMA-5001 authorised" in text
    assert re.search(rf"Refund for {lpn} pending approval: [\d,.]+ USD", text)
    assert len(steps) == len(set(steps)), steps  # each step once
    assert "closed" not in text  # the parcel is still open, the return too
    for raw in ("Audit:", "Event:", "Ledger:", "unit.", "refund.", "_id", "None"):
        assert raw not in text, raw
    # The lines, units, parcels, exceptions and refunds are there, the money too for a supervisor.
    for bit in ("PHN-X1-128", "TEE-BLU-M", "Serial mismatch", "pending approval", "RMA-5001", "Dana Buyer", "SO-1001",
                "1Z999AA10123456784", "Parcels (1)", "Units (1)", "Refund triggers (1)"):
        assert bit in page, bit
    assert "649.00" in page
    # In time order.
    times = re.findall(r'<li class="tl-[a-z]+">\s*<time datetime="([^"]+)"', page)
    assert times == sorted(times)


def test_the_timeline_is_told_in_the_readers_language(client, session, world, found):
    """Every step's words, the states, exception types and places they name, and the amounts, in Spanish."""
    login(client, "super")
    page = client.get(f"/desk/returns/{found['rma']}", headers={"Accept-Language": "es"}).get_data(as_text=True)
    lpn = found["phone_lpn"]
    text = "\n".join(re.findall(r'<span class="tl-(?:title|kind|detail)">([^<]*)</span>', page))
    assert f"Recibida {lpn} (Phone X1 128GB) en Main DC, muelle (DOCK-01)" in text
    assert "Paquete 1 abierto en Main DC" in text and "etiqueta escaneada: " in text
    assert f"Inspeccionada {lpn} (Phone X1 128GB): grado A, embalaje abierto" in text
    assert f"Incidencia: Número de serie distinto en {lpn} (Phone X1 128GB)" in text
    assert f"{lpn} (Phone X1 128GB) pasó a cuarentena en Main DC, cuarentena (QUARANTINE-01)" in text
    assert "Devolución RMA-5001 autorizada" in text
    assert f"Reembolso de {lpn}: pendiente de aprobación, 649,00 USD" in text
    for english in ("Received", "Parcel", "Inspected", "Exception", "moved to", "Refund for", "authorised", "unit\n"):
        assert english not in text, english
    # What the return, its parcel and its carrier are at, and what the customer asked for, too.
    cells = re.findall(r'<span class="tag">[^<]*</span>|<td data-label="[^"]*">[^<]*</td>|\([^()<]*\)</span>', page)
    for said in ('<span class="tag">en recepción</span>', "(en tránsito)</span>", '<td data-label="Pidió">reembolso</td>',
                 '<td data-label="Estado">abierto</td>', '<td data-label="Para">reembolso</td>'):
        assert said in cells, (said, cells)


def test_partner_sees_no_money_a_worker_does(client, session, world, found):
    with unit_of_work(session):
        unit = session.get(ReturnUnit, found["shirt"])
        unit.paid_price = Decimal("21.37")
    login(client, "partner")
    page = client.get(f"/desk/returns/{found['rma_3pl']}").get_data(as_text=True)
    assert found["shirt_lpn"] in page and "Refund triggers (1)" in page and "awaiting inspection" in page
    assert "21.37" not in page and "USD" not in page and "Amount" not in page and "Value" not in page
    client.post("/logout")
    login(client, "worker")
    page = client.get(f"/desk/returns/{found['rma_3pl']}").get_data(as_text=True)
    assert "21.37" in page


def test_a_closed_return_tells_what_was_missing(client, session, world, found):
    from app.receiving.services import close_parcel
    from tests.integration.desk.test_desk_services import key

    close_parcel(session, world.actor("worker"), parcel_id=found["parcel"], idempotency_key=key())
    session.rollback()
    login(client, "worker")
    page = client.get(f"/desk/returns/{found['rma']}").get_data(as_text=True)
    steps = re.findall(r'<span class="tl-title">([^<]*)</span>', page)
    assert steps[-3:] == ["Parcel 1 closed", "Exception: Missing item: Tee blue M", "Return RMA-5001 closed"], steps
    assert "2 expected, 0 received" in page


def test_a_partner_reads_no_amount_in_the_timeline_either(client, session, world, found):
    """The phone's refund was held with its amount in the reason: a partner whose organisation ran
    the main DC would read the step, not the amount."""
    from app.catalog.models import Warehouse

    with unit_of_work(session):
        session.get(Warehouse, world.wh.id).partner_org_id = world.org.id
    login(client, "partner")
    page = client.get(f"/desk/returns/{found['rma']}").get_data(as_text=True)
    assert f"Refund for {found['phone_lpn']} pending approval<" in page
    # What the page says, not its attributes: random form keys and nonces may hold any digits.
    said = re.sub(r'\s[a-z-]+="[^"]*"', "", page)
    assert "649" not in said and "threshold" not in said and "USD" not in said


def test_a_partner_reads_no_amount_of_a_customers_flag_either(client, session, world, found):
    """A customer far above the merchant's norm is flagged with what they asked back: the partner
    reads that the return was flagged, in the timeline too, never the amounts."""
    from app.anomalies.domain import CustomerFigures, customer_norm
    from app.anomalies.writer import flag_rows
    from app.catalog.models import Warehouse
    from app.rows import write

    flag = customer_norm(CustomerFigures(6, 6, Decimal("900.00"), Decimal("0.10"), Decimal("50.00")),
                         factor=Decimal(3), min_returns=3)
    assert flag is not None and "900.00" in flag.explanation
    with unit_of_work(session):
        session.get(Warehouse, world.wh.id).partner_org_id = world.org.id
        write(session, flag_rows(world.actor("worker"), [flag], unit_id=None, rma_id=found["rma"], warehouse_id=world.wh.id))
    login(client, "partner")
    page = client.get(f"/desk/returns/{found['rma']}").get_data(as_text=True)
    assert "Return flagged: Customer above the norm" in page
    said = re.sub(r'\s[a-z-]+="[^"]*"', "", page)
    assert "900" not in said and "asked back" not in said


def test_a_units_case_links_to_its_return(client, found):
    login(client, "super")
    case = client.get(f"/desk/units/{found['phone']}").get_data(as_text=True)
    assert f'href="/desk/returns/{found["rma"]}"' in case
