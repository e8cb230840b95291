"""The dashboard's pages through the web: who may see what, filters refused with a clear 400,
drill-down links, and CSV exports (UTF-8 with a BOM, a header, formulas neutralised)."""
from __future__ import annotations

import csv
import io
import re
import uuid

import pytest
from sqlalchemy.orm import Session

from app.db import utcnow
from tests.conftest import login
from tests.report_data import at, exception, reason_codes, refund, rma, unit

PAGES = ["/reports", "/reports/reasons", "/reports/flow", "/reports/drill?metric=cycle_time"]
WEEK = "from=2026-11-01&to=2026-11-07"


@pytest.fixture
def scene(session: Session, world):  # type: ignore[no-untyped-def]
    """A week of returns at both warehouses: units received by two workers, a refund, an exception,
    and a reason code a spreadsheet would run as a formula."""
    reason_codes(session)
    r = rma(session, world, at(1), lines=(("shirt", 2, "=HYPERLINK(\"http://x\")"),))
    r3 = rma(session, world, at(1), warehouse=world.wh3pl, lines=(("shirt", 1, "wrong_size"),))
    a = unit(session, world, state="available", received=at(2, 9), inspected=at(3), rma_id=r.id, paid="20.00")
    unit(session, world, state="available", received=at(2, 10), inspected=at(4), rma_id=r.id, by="worker2", paid="20.00")
    unit(session, world, state="available", received=at(2, 11), inspected=at(4), rma_id=r3.id, warehouse=world.wh3pl)
    refund(session, world, a, released=at(3, 9))
    exception(session, world, at(3))
    session.commit()
    return {"rma": r, "unit": a}


@pytest.mark.parametrize("username", ["super", "admin"])
def test_staff_see_every_page_with_money(client, scene, username) -> None:  # type: ignore[no-untyped-def]
    login(client, username)
    for page in PAGES + ["/reports/recovery", "/reports/workers"]:
        resp = client.get(f"{page}{'&' if '?' in page else '?'}{WEEK}")
        assert resp.status_code == 200, (page, resp.data[:300])
    body = client.get(f"/reports?{WEEK}").get_data(as_text=True)
    assert "Recovered value" in body and "$60.00" in body  # three units restocked at $20
    assert "Date basis:" in body and "mean over units of (inspected at − return authorised at)" in body
    assert "<svg" in body and "<title id=\"daily-title\">" in body and "<desc id=\"daily-desc\">" in body


def test_the_worker_sees_only_their_own_figures(client, scene) -> None:  # type: ignore[no-untyped-def]
    login(client, "worker")
    for page in PAGES + ["/reports/recovery", f"/reports?export=kpis&{WEEK}"]:
        assert client.get(page).status_code == 403, page
    body = client.get(f"/reports/workers?{WEEK}").get_data(as_text=True)
    assert "Your figures" in body and "Worker2" not in body
    assert re.search(r"<td>Worker</td><td class=\"num\">2</td>", body)  # their two units (main DC and 3PL)
    rows = list(csv.reader(io.StringIO(client.get(f"/reports/workers?export=workers&{WEEK}").data.decode("utf-8-sig"))))
    assert rows == [["worker", "units received", "worker-hours", "units per worker-hour"], ["Worker", "2", "2", "1.0"]]


def test_a_partner_sees_their_warehouse_and_never_money(client, scene) -> None:  # type: ignore[no-untyped-def]
    login(client, "partner")
    body = client.get(f"/reports?{WEEK}").get_data(as_text=True)
    assert "Recovered value" not in body and "Recovery rate" not in body and "$" not in body
    assert "Recovery</a>" not in body  # no tab
    assert client.get(f"/reports/recovery?{WEEK}").status_code == 403
    assert client.get(f"/reports/drill?metric=recovery_value&{WEEK}").status_code == 403
    drill = client.get(f"/reports/drill?metric=units_per_hour&{WEEK}").get_data(as_text=True)
    assert drill.count("LPN-T") == 1 and "Value</th>" not in drill  # the 3PL's one unit, no value column
    resp = client.get(f"/reports?warehouse=WH1&{WEEK}")  # not theirs
    assert resp.status_code == 400 and b"no warehouse" in resp.data
    rows = list(csv.reader(io.StringIO(client.get(f"/reports/drill?metric=units_per_hour&export=rows&{WEEK}").data.decode("utf-8-sig"))))
    assert "value" not in rows[0] and len(rows) == 2


@pytest.mark.parametrize(("query", "says"), [
    ("from=2026-13-01", b"YYYY-MM-DD"),
    ("from=2026-11-09&to=2026-11-01", b"after it ends"),
    ("from=2020-01-01&to=2026-11-01", b"at most 366"),
    ("from=1900-01-01&to=1900-02-01", b"between 2000-01-01"),
    ("warehouse=NOPE", b"no warehouse"),
    ("merchant=%27%3B--", b"no merchant"),
    ("carrier=" + "x" * 300, b"no carrier"),
    ("export=everything", b"export"),
])
def test_bad_filters_get_a_clear_400(client, scene, query, says) -> None:  # type: ignore[no-untyped-def]
    login(client, "super")
    for page in ("/reports", "/reports/flow"):
        resp = client.get(f"{page}?{query}")
        assert resp.status_code == 400 and says in resp.data, (page, resp.data[:400])


@pytest.mark.parametrize("url", ["/reports/reasons?by=weather", "/reports/drill?metric=nope", "/reports/drill?metric=cycle_time&period=later"])
def test_bad_choices_get_a_clear_400(client, scene, url) -> None:  # type: ignore[no-untyped-def]
    login(client, "super")
    resp = client.get(url)
    assert resp.status_code == 400 and b"must be" in resp.data


def test_every_figure_drills_down_to_its_units_and_returns(client, scene) -> None:  # type: ignore[no-untyped-def]
    login(client, "super")
    body = client.get(f"/reports?{WEEK}").get_data(as_text=True)
    for metric in ("cycle_time", "refund_latency", "restock_latency", "recovery_rate", "recovery_value", "quarantine_age",
                   "exceptions", "units_per_hour"):
        assert f"/reports/drill?from=2026-11-01&amp;to=2026-11-07&amp;metric={metric}" in body, metric
    drill = client.get(f"/reports/drill?metric=cycle_time&{WEEK}").get_data(as_text=True)
    assert f'href="/desk/units/{scene["unit"]}"' in drill and f'href="/desk/returns/{scene["rma"].id}"' in drill
    exceptions = client.get(f"/reports/drill?metric=exceptions&{WEEK}").get_data(as_text=True)
    assert 'href="/desk/exception/' in exceptions


def test_exports_open_as_utf8_with_a_header_and_no_formula(client, scene) -> None:  # type: ignore[no-untyped-def]
    login(client, "super")
    exports = {"/reports": ["kpis", "daily"], "/reports/reasons?by=reason": ["pareto", "spikes", "stated", "nofault"],
               "/reports/recovery": ["dispositions"], "/reports/flow": ["backlog", "hours", "workers", "forecast"],
               "/reports/drill?metric=exceptions": ["rows"]}
    for page, tables in exports.items():
        for table in tables:
            resp = client.get(f"{page}{'&' if '?' in page else '?'}{WEEK}&export={table}")
            assert resp.status_code == 200 and resp.mimetype == "text/csv", (page, table)
            assert resp.data.startswith("\ufeff".encode()) and "attachment" in resp.headers["Content-Disposition"]
            rows = list(csv.reader(io.StringIO(resp.data.decode("utf-8-sig"))))
            assert rows and all(rows[0]), (page, table)
    pareto = list(csv.reader(io.StringIO(client.get(f"/reports/reasons?by=reason&export=pareto&{WEEK}").data.decode("utf-8-sig"))))
    assert ["'=HYPERLINK(\"http://x\")"] == [r[0] for r in pareto[1:] if "HYPERLINK" in r[0]]


def test_the_dashboard_is_linked_where_supervisors_and_admins_go(client, scene) -> None:  # type: ignore[no-untyped-def]
    login(client, "super")
    assert b'href="/reports"' in client.get("/").data and b'href="/reports"' in client.get("/desk").data
    client.post("/logout")
    login(client, "admin")
    assert b'href="/reports"' in client.get("/admin/users").data


def test_the_flow_page_shows_the_backlog_and_forecast(client, scene, session: Session, world) -> None:  # type: ignore[no-untyped-def]
    from datetime import timedelta

    unit(session, world, state="quarantine", received=utcnow() - timedelta(days=9), changed=utcnow() - timedelta(days=8))
    session.commit()
    login(client, "super")
    body = client.get(f"/reports/flow?{WEEK}").get_data(as_text=True)
    assert re.search(r"<td>Quarantine</td>(<td class=\"num\">0</td>){3}<td class=\"num aged\">1</td>", body)
    assert "Inbound, next 7 days" in body and "Units received by hour of day" in body


def test_recovery_rates_are_console_settings_saved_once_per_key(client, session: Session, world) -> None:  # type: ignore[no-untyped-def]
    from sqlalchemy import func, select

    from app.ledger.models import AuditEntry

    unit(session, world, state="refurbish", received=at(2), inspected=at(3), paid="100.00")
    session.commit()
    login(client, "admin")
    page = f"/reports/recovery?{WEEK}&export=dispositions"
    assert ["Refurbish", "1", "100.00", "0.60", "60.00"] in list(csv.reader(io.StringIO(client.get(page).data.decode("utf-8-sig"))))
    same = uuid.uuid4().hex
    for _ in range(2):  # the same form sent twice (a double tap): one change, one audit entry
        resp = client.post("/admin/settings", data={"key": same, "recovery_rate_refurbish": "0.45"})
        assert resp.status_code in (200, 302, 303)
    assert ["Refurbish", "1", "100.00", "0.45", "45.00"] in list(csv.reader(io.StringIO(client.get(page).data.decode("utf-8-sig"))))
    assert session.scalar(select(func.count()).select_from(AuditEntry).where(AuditEntry.action == "settings.saved")) == 1
    bad = client.post("/admin/settings", data={"key": uuid.uuid4().hex, "recovery_rate_liquidation": "1.5"})
    assert bad.status_code == 422 and b"from 0 to 1" in bad.data
