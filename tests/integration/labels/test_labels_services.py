"""Label use cases on SQLite and PostgreSQL: what a label says, printing once, printers, scoping."""
from __future__ import annotations

import contextlib
import functools
import re
import socket
import threading
import time
import uuid
from decimal import Decimal

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, joinedload

from app.auth.roles import Actor
from app.catalog.models import Product, ProductBarcode
from app.db import unit_of_work
from app.errors import DomainError, IdempotencyKeyReused, NotFound, NotPermitted, ValidationFailed
from app.labels import services
from app.labels.models import Printer, PrintJob
from app.ledger.models import AuditEntry, IdempotencyRecord, ReturnUnit
from app.labels.printer import UNREACHABLE
from tests.fakes import PRINTER_NETWORKS, closed_port, unresponsive_port
from tests.helpers import add_open_box_variant, add_printer, receive

send_to_printer = functools.partial(services.send_to_printer, networks=PRINTER_NETWORKS)


def key() -> str:
    """A fresh idempotency key (one tap)."""
    return uuid.uuid4().hex


def count(session: Session, model) -> int:  # type: ignore[no-untyped-def]
    """Rows of a table (read in a throwaway transaction)."""
    n = session.scalar(select(func.count()).select_from(model)) or 0
    session.rollback()
    return n


def assert_label(zpl: str, value: str) -> None:
    """One whole ZPL label carrying ``value`` in its Code128 field."""
    assert zpl.startswith("^XA") and zpl.endswith("^XZ")
    assert zpl.count("^XA") == zpl.count("^XZ") == 1
    assert re.search(r"\^BC[^\n]*\^FD" + re.escape(value) + r"\^FS", zpl), zpl


# --- what the label says ------------------------------------------------------------------


def test_lpn_label_content(session, world):  # type: ignore[no-untyped-def]
    """An LPN label carries the LPN, SKU, name, location and warehouse of the unit."""
    unit = receive(session, world)
    content = services.build_label(session, unit, "lpn")
    assert (content.barcode_value, content.lpn, content.sku, content.location, content.warehouse) == (
        unit.lpn, unit.lpn, "TEE-BLU-M", "DOCK-01", "Main DC")


def test_sku_label_of_open_box_variant(session, world):  # type: ignore[no-untyped-def]
    """A unit graded below A sells as its product's open-box variant and gets that UPC; grade A keeps its own."""
    add_open_box_variant(session, world)
    regraded = receive(session, world, grade="B", packaging="opened")
    as_new = receive(session, world, grade="A", packaging="sealed")
    label = services.build_label(session, regraded, "sku")
    assert (label.sku, label.barcode_value, label.lpn) == ("TEE-BLU-M-OB", "012345678905", regraded.lpn)
    own = services.build_label(session, as_new, "sku")
    assert (own.sku, own.barcode_value) == ("TEE-BLU-M", "036000291452")


def test_sku_label_falls_back_to_sku(session, world):  # type: ignore[no-untyped-def]
    """A product without barcodes is labelled with its SKU; one whose SKU cannot be encoded is refused clearly."""
    with unit_of_work(session):
        plain = Product(sku="PLAIN-1", name="Plain", category="apparel", unit_value=Decimal("1"))
        odd = Product(sku="ÜNI-1", name="Odd", category="apparel", unit_value=Decimal("1"))
        session.add_all([plain, odd])
    assert services.build_label(session, receive(session, world, product=plain), "sku").barcode_value == "PLAIN-1"
    with pytest.raises(ValidationFailed, match="no barcode"):
        services.build_label(session, receive(session, world, product=odd), "sku")
    with pytest.raises(ValidationFailed):
        services.build_label(session, receive(session, world), "pallet")


def _printed(session: Session, unit: ReturnUnit, *labels: tuple[str, str]) -> None:
    """Print jobs of (kind, barcode value) labels of a unit, as if printed before."""
    with unit_of_work(session):
        session.add_all([PrintJob(unit_id=unit.id, stock="4x6", kind=kind, barcode_value=value, channel="browser")
                         for kind, value in labels])


def _reference_offer(session: Session, unit: ReturnUnit) -> services.LabelOffer:
    """What the print buttons offered when they were worked out by building both labels."""
    labels = {}
    for kind in ("lpn", "sku"):
        with contextlib.suppress(DomainError):
            labels[kind] = services.build_label(session, unit, kind)
    printed = {(c.kind, c.barcode_value): services.previous_prints(session, unit.id, c.kind, c.barcode_value)
               for c in labels.values()}
    lpn = "lpn" in labels and printed.get(("lpn", labels["lpn"].barcode_value), 0) > 0
    if "sku" not in labels:
        return services.LabelOffer(lpn, None, None, False)
    sku = labels["sku"]
    return services.LabelOffer(lpn, sku.sku, sku.barcode_value, printed.get(("sku", sku.barcode_value), 0) > 0)


def test_label_offer_is_what_build_label_would_make(session, world):  # type: ignore[no-untyped-def]
    """label_offer (the print buttons' one read) decides as build_label does: the open-box variant of a
    unit graded not-new, the first barcode a label can carry, the SKU when none can, no SKU label when
    not even the SKU can be carried, no LPN label for an LPN Code128 cannot carry; and a label counts
    as printed before only if that exact label (kind and barcode) was printed for that unit."""
    with unit_of_work(session):
        variant = Product(sku="TEE-BLU-M-OB", name="Tee blue M open box", category="apparel",
                          unit_value=Decimal("18.00"), merchant_id=world.merchant.id)
        odd_first = Product(sku="ODD-FIRST", name="Odd first code", category="apparel", unit_value=Decimal("1"))
        bare = Product(sku="PLAIN-1", name="Plain", category="apparel", unit_value=Decimal("1"))
        hopeless = Product(sku="ÜNI-1", name="Odd", category="apparel", unit_value=Decimal("1"))
        session.add_all([variant, odd_first, bare, hopeless])
        session.flush()
        session.add_all([ProductBarcode(code="00012345678905", kind="upc", product_id=variant.id),
                         ProductBarcode(code="ÄBC-1", kind="alias", product_id=odd_first.id),
                         ProductBarcode(code="00098765432109", kind="upc", product_id=odd_first.id),
                         ProductBarcode(code="00055555555555", kind="upc", product_id=odd_first.id)])
        session.get(Product, world.products["shirt"].id).open_box_product_id = variant.id
    regraded = receive(session, world, grade="B", packaging="opened")
    as_new = receive(session, world, grade="A", packaging="sealed")
    opened_a = receive(session, world, grade="A", packaging="opened")
    unseen = receive(session, world)
    first_bad = receive(session, world, product=odd_first)
    no_codes = receive(session, world, product=bare)
    no_label = receive(session, world, product=hopeless)
    odd_lpn = receive(session, world, lpn="LPÜ-1")
    _printed(session, regraded, ("lpn", regraded.lpn), ("sku", "012345678905"), ("sku", "012345678905"))
    _printed(session, as_new, ("sku", "012345678905"), ("lpn", regraded.lpn))  # another label, another unit's LPN
    _printed(session, unseen, ("sku", "036000291452"))
    _printed(session, first_bad, ("sku", "098765432109"), ("sku", "ÄBC-1"))
    _printed(session, no_codes, ("lpn", no_codes.lpn), ("sku", "PLAIN-1"))
    _printed(session, no_label, ("sku", "ÜNI-1"))
    _printed(session, odd_lpn, ("lpn", "LPÜ-1"), ("sku", "036000291452"))
    expected = {
        regraded: (True, "TEE-BLU-M-OB", "012345678905", True),
        as_new: (False, "TEE-BLU-M", "036000291452", False),
        opened_a: (False, "TEE-BLU-M-OB", "012345678905", False),
        unseen: (False, "TEE-BLU-M", "036000291452", True),
        first_bad: (False, "ODD-FIRST", "098765432109", True),
        no_codes: (True, "PLAIN-1", "PLAIN-1", True),
        no_label: (False, None, None, False),
        odd_lpn: (False, "TEE-BLU-M", "036000291452", True),
    }
    session.expunge_all()  # read as a request does: the unit and its product, nothing else cached
    for unit, want in expected.items():
        loaded = session.get(ReturnUnit, unit.id, options=[joinedload(ReturnUnit.product)])
        offer = services.label_offer(session, loaded)
        assert offer == want, (unit.lpn, offer)
        assert offer == _reference_offer(session, loaded), unit.lpn
        session.rollback()


# --- sending to a network printer ---------------------------------------------------------


def test_send_delivers_whole_zpl_and_records(session, world, fake_printer):  # type: ignore[no-untyped-def]
    """The printer receives one whole label; only then are a PrintJob and an audit entry written."""
    unit = receive(session, world)
    printer = add_printer(session, world, fake_printer.port)
    result = send_to_printer(session, world.actor("worker"), unit_id=unit.id, printer_id=printer.id,
                                      kind="lpn", stock=None, reason=None, idempotency_key=key())
    assert result.replayed is False and result.reprint is False
    [job] = fake_printer.wait_for(1)
    assert_label(job.decode(), unit.lpn)
    pj = session.scalars(select(PrintJob)).one()
    assert (pj.unit_id, pj.printer_id, pj.channel, pj.stock, pj.kind, pj.barcode_value, pj.reprint, pj.actor_id) == (
        unit.id, printer.id, "zpl_socket", "4x6", "lpn", unit.lpn, False, world.users["worker"].id)
    entry = session.scalars(select(AuditEntry).where(AuditEntry.action == "label.printed")).one()
    assert entry.entity_type == "print_job" and entry.details["lpn"] == unit.lpn
    session.rollback()


@pytest.mark.parametrize("failure", ["refused", "timeout", "unknown host", "loopback", "link-local"])
def test_failing_printer_writes_nothing_and_says_the_same_whatever_failed(session, world, failure):  # type: ignore[no-untyped-def]
    """A refused, silent, unknown or not-allowed printer: one message (no port scanner for whoever
    sets printers up), and no job, audit or idempotency claim."""
    unit = receive(session, world)
    before = (count(session, PrintJob), count(session, AuditEntry), count(session, IdempotencyRecord))
    with contextlib.ExitStack() as stack:
        if failure == "refused":
            printer = add_printer(session, world, closed_port())
        elif failure == "timeout":
            printer = add_printer(session, world, stack.enter_context(unresponsive_port()))
        else:
            listening = stack.enter_context(socket.create_server(("127.0.0.1", 0)))  # a service on this host
            host = {"unknown host": "printer.invalid", "loopback": "127.0.0.1", "link-local": "169.254.169.254"}[failure]
            printer = add_printer(session, world, listening.getsockname()[1], host=host)
        started = time.monotonic()
        with pytest.raises(services.PrinterUnavailable) as info:
            send_to_printer(session, world.actor("worker"), unit_id=unit.id, printer_id=printer.id,
                            kind="lpn", stock=None, reason=None, idempotency_key=key(), timeout=0.5)
        assert time.monotonic() - started < 3
    assert info.value.message == (f"{UNREACHABLE}. Nothing was printed or recorded: check that {printer.name} is "
                                  "switched on, online and loaded, then try again.")
    assert (count(session, PrintJob), count(session, AuditEntry), count(session, IdempotencyRecord)) == before


def test_same_key_twice_prints_once(session, world, fake_printer):  # type: ignore[no-untyped-def]
    """A double-submitted send (same key) has one effect: one delivery, one PrintJob, the same answer."""
    unit = receive(session, world)
    printer = add_printer(session, world, fake_printer.port)
    tap = key()
    kwargs = dict(unit_id=unit.id, printer_id=printer.id, kind="lpn", stock=None, reason=None, idempotency_key=tap)
    first = send_to_printer(session, world.actor("worker"), **kwargs)
    second = send_to_printer(session, world.actor("worker"), **kwargs)
    assert second.replayed is True and second.print_job_id == first.print_job_id
    time.sleep(0.2)
    assert len(fake_printer.jobs) == 1 and count(session, PrintJob) == 1
    with pytest.raises(IdempotencyKeyReused):
        send_to_printer(session, world.actor("worker"), **{**kwargs, "kind": "sku"})


@pytest.mark.pg_only
def test_concurrent_double_tap_prints_once(engine, session_factory, world, fake_printer):  # type: ignore[no-untyped-def]
    """Two simultaneous requests with one key: the second waits for the first and replays it."""
    setup = session_factory()
    unit = receive(setup, world)
    printer = add_printer(setup, world, fake_printer.port)
    setup.close()
    tap, results, errors = key(), [], []
    gate = threading.Barrier(2)

    def slow_sender(host: str, port: int, payload: bytes, timeout: float, networks) -> None:  # type: ignore[no-untyped-def]
        time.sleep(0.3)  # hold the claim while the twin arrives
        from app.labels.printer import send_raw

        send_raw(host, port, payload, timeout=timeout, networks=networks)

    def tap_once() -> None:
        s = session_factory()
        try:
            gate.wait()
            results.append(send_to_printer(s, world.actor("worker"), unit_id=unit.id, printer_id=printer.id,
                                                    kind="lpn", stock=None, reason=None, idempotency_key=tap,
                                                    sender=slow_sender))
        except Exception as exc:  # noqa: BLE001 - collected for the assertion
            errors.append(exc)
        finally:
            s.close()

    threads = [threading.Thread(target=tap_once) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(15)
    assert errors == []
    assert sorted(r.replayed for r in results) == [False, True]
    time.sleep(0.2)
    check = session_factory()
    assert len(fake_printer.jobs) == 1 and count(check, PrintJob) == 1
    check.close()


def test_reprint_needs_a_reason(session, world, fake_printer):  # type: ignore[no-untyped-def]
    """The first print needs no reason; a later one is refused without one and recorded as a reprint with one."""
    unit = receive(session, world)
    printer = add_printer(session, world, fake_printer.port)
    send = lambda reason: send_to_printer(  # noqa: E731
        session, world.actor("worker"), unit_id=unit.id, printer_id=printer.id, kind="lpn", stock=None,
        reason=reason, idempotency_key=key())
    send(None)
    for empty in (None, "", "   \n"):
        with pytest.raises(ValidationFailed, match="reason"):
            send(empty)
    with pytest.raises(ValidationFailed, match="under 200"):
        send("x" * 201)
    assert len(fake_printer.wait_for(1)) == 1
    again = send("Label lost or fell off")
    assert again.reprint is True
    jobs = session.scalars(select(PrintJob).order_by(PrintJob.id)).all()
    assert [(j.reprint, j.reason) for j in jobs] == [(False, None), (True, "Label lost or fell off")]
    assert session.scalar(select(func.count()).select_from(AuditEntry).where(AuditEntry.action == "label.reprinted")) == 1
    assert len(fake_printer.wait_for(2)) == 2
    session.rollback()


def test_relabel_after_regrade_is_not_a_reprint(session, world):  # type: ignore[no-untyped-def]
    """A SKU label whose barcode changed (regraded to another SKU) is a new label: no reason asked."""
    unit = receive(session, world)
    actor = world.actor("worker")
    services.record_print(session, actor, unit_id=unit.id, kind="sku", stock="4x6", channel="browser",
                          reason=None, idempotency_key=key())
    label = services.build_label(session, session.get(ReturnUnit, unit.id), "sku")
    assert services.previous_prints(session, unit.id, "sku", label.barcode_value) == 1
    with unit_of_work(session):
        variant = Product(sku="TEE-OB", name="Tee open box", category="apparel", unit_value=Decimal("1"))
        session.add(variant)
        session.flush()
        session.get(Product, world.products["shirt"].id).open_box_product_id = variant.id
        session.get(ReturnUnit, unit.id).grade = "C"
    result = services.record_print(session, actor, unit_id=unit.id, kind="sku", stock="2x1", channel="browser",
                                   reason=None, idempotency_key=key())
    assert result.reprint is False and result.barcode_value == "TEE-OB"


def test_printer_must_be_here_and_hold_the_stock(session, world, fake_printer):  # type: ignore[no-untyped-def]
    """A printer at another warehouse, a switched-off one, or the wrong stock: refused, nothing sent."""
    unit = receive(session, world)
    elsewhere = add_printer(session, world, fake_printer.port, warehouse=world.wh3pl, name="Reno Zebra")
    small = add_printer(session, world, fake_printer.port, stock="2x1", name="Small")
    actor = world.actor("worker")
    with pytest.raises(ValidationFailed, match="Choose a printer here"):
        send_to_printer(session, actor, unit_id=unit.id, printer_id=elsewhere.id, kind="lpn", stock=None,
                                 reason=None, idempotency_key=key())
    with pytest.raises(ValidationFailed, match="holds 2 x 1"):
        send_to_printer(session, actor, unit_id=unit.id, printer_id=small.id, kind="lpn", stock="4x6",
                                 reason=None, idempotency_key=key())
    with unit_of_work(session):
        session.get(Printer, small.id).active = False
    with pytest.raises(NotFound):
        send_to_printer(session, actor, unit_id=unit.id, printer_id=small.id, kind="lpn", stock=None,
                                 reason=None, idempotency_key=key())
    time.sleep(0.1)
    assert fake_printer.jobs == [] and count(session, PrintJob) == 0


def test_partner_cannot_print_another_orgs_unit(session, world, fake_printer):  # type: ignore[no-untyped-def]
    """Partners print only units at their own warehouses (others are 'not found'), to their own printers."""
    ours = receive(session, world, warehouse=world.wh3pl)
    theirs = receive(session, world)
    reno = add_printer(session, world, fake_printer.port, warehouse=world.wh3pl, name="Reno Zebra")
    main = add_printer(session, world, fake_printer.port, name="Main Zebra")
    partner, outsider = world.actor("partner"), world.actor("outsider")
    for actor, unit_id, printer_id in ((partner, theirs.id, main.id), (outsider, ours.id, reno.id),
                                       (partner, ours.id, main.id)):
        with pytest.raises(NotFound):
            send_to_printer(session, actor, unit_id=unit_id, printer_id=printer_id, kind="lpn", stock=None,
                                     reason=None, idempotency_key=key())
    with pytest.raises(NotFound):
        services.print_history(session, partner, theirs.id)
    result = send_to_printer(session, partner, unit_id=ours.id, printer_id=reno.id, kind="lpn", stock=None,
                                      reason=None, idempotency_key=key())
    assert result.printer == "Reno Zebra"
    assert [p.name for p in services.list_printers(session, partner)] == ["Reno Zebra"]
    with pytest.raises(NotPermitted):
        services.record_print(session, world.actor("admin"), unit_id=ours.id, kind="lpn", stock="4x6",
                              channel="browser", reason=None, idempotency_key=key())


def test_hostile_names_print_safely(session, world, fake_printer):  # type: ignore[no-untyped-def]
    """^ and ~ in a product name reach the printer hex-escaped: one label, no extra commands."""
    with unit_of_work(session):
        evil = Product(sku="EVIL~JR^XZ", name=("^XA~JR^XZ~JD " + "ÜñíçødΣ " * 40)[:200], category="apparel",
                       unit_value=Decimal("1"))
        session.add(evil)
    unit = receive(session, world, product=evil)
    for stock, name in (("4x6", "Big"), ("2x1", "Small")):
        printer = add_printer(session, world, fake_printer.port, stock=stock, name=name)
        send_to_printer(session, world.actor("worker"), unit_id=unit.id, printer_id=printer.id, kind="lpn",
                                 stock=None, reason="Printer jam or misprint" if stock == "2x1" else None,
                                 idempotency_key=key())
    for job in fake_printer.wait_for(2):
        zpl = job.decode("utf-8")
        assert_label(zpl, unit.lpn)
        assert "~" not in zpl and zpl.count("^XZ") == 1
        assert "EVIL_7EJR_5EXZ" in zpl


# --- downloads and browser prints ---------------------------------------------------------


def test_zpl_download_is_recorded_and_replayed(session, world):  # type: ignore[no-untyped-def]
    """A ZPL download is a recorded print; its retry gets the same file and no second record; A4 is refused."""
    unit = receive(session, world)
    actor, tap = world.actor("worker"), key()
    first = services.record_print(session, actor, unit_id=unit.id, kind="lpn", stock="2x1", channel="zpl_download",
                                  reason=None, idempotency_key=tap)
    assert_label(first.zpl, unit.lpn)
    again = services.record_print(session, actor, unit_id=unit.id, kind="lpn", stock="2x1", channel="zpl_download",
                                  reason=None, idempotency_key=tap)
    assert again.zpl == first.zpl and again.replayed is True
    assert count(session, PrintJob) == 1
    for bad in (dict(stock="a4", channel="zpl_download"), dict(stock="3x5", channel="browser"),
                dict(stock="4x6", channel="zpl_socket")):
        with pytest.raises(ValidationFailed):
            services.record_print(session, actor, unit_id=unit.id, kind="lpn", reason=None, idempotency_key=key(),
                                  **bad)
    with pytest.raises(ValidationFailed, match="idempotency key"):
        services.record_print(session, actor, unit_id=unit.id, kind="lpn", stock="4x6", channel="browser",
                              reason=None, idempotency_key=None)
    with pytest.raises(NotFound):
        services.record_print(session, actor, unit_id=999999, kind="lpn", stock="4x6", channel="browser",
                              reason=None, idempotency_key=key())


# --- printers (admin) ---------------------------------------------------------------------


def test_save_printer_admin_only_and_validated(session, world):  # type: ignore[no-untyped-def]
    """Only admins set up printers; bad addresses, stocks and duplicate names are refused clearly."""
    admin = world.actor("admin")
    good = dict(printer_id=None, name="Dock 1", warehouse_id=world.wh.id, host="10.0.0.5", port=9100, stock="4x6",
                active=True)
    for role in ("worker", "super", "partner"):
        with pytest.raises(NotPermitted):
            services.save_printer(session, world.actor(role), **good, idempotency_key=key())
    created = services.save_printer(session, admin, **good, idempotency_key=key())
    assert created.action == "printer.created"
    for change, message in ((dict(host="bad host"), "not a valid host"), (dict(port=70000), "port"),
                            (dict(host="127.0.0.1"), "warehouse network"), (dict(host="::1"), "warehouse network"),
                            (dict(host="169.254.169.254"), "warehouse network"), (dict(host="8.8.8.8"), "warehouse network"),
                            (dict(host="::ffff:127.0.0.1"), "warehouse network"),
                            (dict(host="printer.invalid"), "warehouse network"),
                            (dict(stock="a4"), "4x6 or 2x1"), (dict(name=""), "name"),
                            (dict(warehouse_id=999999), "warehouse")):
        with pytest.raises(ValidationFailed, match=message):
            services.save_printer(session, admin, **{**good, "name": "Other", **change}, idempotency_key=key())
    with pytest.raises(ValidationFailed, match="already has a printer called Dock 1"):
        services.save_printer(session, admin, **good, idempotency_key=key())
    off = services.save_printer(session, admin, **{**good, "printer_id": created.printer_id, "active": False},
                                idempotency_key=key())
    assert off.action == "printer.deactivated"
    with pytest.raises(NotFound):
        services.get_printer(session, world.actor("worker"), created.printer_id)
    assert services.list_printers(session, world.actor("worker")) == []
    assert len(services.list_printers(session, admin, include_inactive=True)) == 1
    actions = session.scalars(select(AuditEntry.action).where(AuditEntry.entity_type == "printer")).all()
    assert sorted(actions) == ["printer.created", "printer.deactivated"]
    session.rollback()


def test_admin_actor_without_print_permission(session, world):  # type: ignore[no-untyped-def]
    """Admins run the system, not the dock: printing is a floor permission."""
    unit = receive(session, world)
    with pytest.raises(NotPermitted):
        send_to_printer(session, Actor(id=None, role="admin", name="x"), unit_id=unit.id, printer_id=1,
                                 kind="lpn", stock=None, reason=None, idempotency_key=key())
