"""The inspection queue in Chromium at handheld size (Pixel 5, then 360 px wide): the list, its
reasons, "Next unit" landing on the head of the queue, and every tappable target at least 44x44."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import update
from sqlalchemy.orm import Session

from app.db import make_engine, utcnow
from app.ledger.models import ReturnUnit
from app.orders.models import Order, OrderLine
from tests.e2e.conftest import shoot, sign_in, tap_targets, too_small
from tests.helpers import receive_unit

pytestmark = pytest.mark.e2e

def _queue(url: str, world, *, tees: int = 0) -> dict[str, int]:
    """A fast-selling tee (38 a day), a phone and a cream at WH1; `tees` more tees for a second page."""
    engine = make_engine(url)
    now = utcnow()
    with Session(engine, expire_on_commit=False) as s:
        order = Order(number="SO-FAST", merchant_id=world.merchant.id, channel_id=world.channel.id,
                      customer_id=world.customer.id, placed_at=now - timedelta(days=2))
        s.add(order)
        s.flush()
        s.add(OrderLine(order_id=order.id, product_id=world.products["shirt"].id, quantity=1062, unit_price=20))
        s.commit()
        w = world.actor("worker")
        units = {key: receive_unit(s, world, product, w).id
                 for key, product in (("phone", "phone"), ("cream", "cream"), ("tee", "shirt"))}
        for key, hours in (("phone", 2), ("cream", 30), ("tee", 5)):
            s.execute(update(ReturnUnit).where(ReturnUnit.id == units[key]).values(received_at=now - timedelta(hours=hours)))
        for _ in range(tees):
            receive_unit(s, world, "shirt", w)
        s.commit()
    engine.dispose()
    return units


def _small_targets(page) -> list[dict]:  # type: ignore[no-untyped-def]
    assert tap_targets(page, "body"), "no tappable target found"
    return too_small(page, "body")


def test_next_unit_opens_the_head_of_the_queue(live_server, e2e_world, handheld, e2e_db_url):
    units = _queue(e2e_db_url, e2e_world)
    page = handheld.new_page()
    sign_in(page, live_server, "worker")
    page.goto(f"{live_server}/receive")
    page.click("text=WH1 · Main DC")
    page.wait_for_selector("text=Scan a parcel label")
    page.click(".nav >> text=Queue")
    page.wait_for_selector("#queue")
    rows = page.locator(".queue-unit")
    assert rows.count() == 3
    assert [int(rows.nth(i).get_attribute("data-unit-id")) for i in range(3)] == [units["tee"], units["phone"], units["cream"]]
    assert "fast seller: 38 shipped a day" in rows.nth(0).inner_text() and "5 h" in rows.nth(0).inner_text()
    assert "high value: $699" in rows.nth(1).inner_text()
    assert "waiting 30 h" in rows.nth(2).inner_text()
    head_lpn = rows.nth(0).locator(".queue-lpn").inner_text()
    shoot(page, "queue-01-pixel5")
    assert _small_targets(page) == []
    page.click("#next-unit")
    page.wait_for_selector("#inspect-form")
    assert page.url.endswith(f"/receive/units/{units['tee']}")
    assert page.inner_text("#unit .lpn") == head_lpn
    shoot(page, "queue-02-next-unit")
    # inspected and confirmed, "Next unit to inspect" opens the one after it
    for q in ("tags_attached", "unworn"):
        if page.locator(f"input[name=q_{q}][value=yes]").count():
            page.check(f"input[name=q_{q}][value=yes]")
    page.check("input[name=grade][value=A]")
    page.check("input[name=packaging][value=sealed]")
    page.click("text=Save inspection")
    page.wait_for_selector("#decision")
    page.click("#confirm-btn")
    page.wait_for_selector("#done")
    shoot(page, "queue-03-done-next")
    page.click("#done #next-unit")
    page.wait_for_selector("#inspect-form")
    assert page.url.endswith(f"/receive/units/{units['phone']}")


def test_the_queue_fits_360_px_and_every_target_is_thumb_sized(live_server, e2e_world, handheld, e2e_db_url):
    _queue(e2e_db_url, e2e_world, tees=30)
    page = handheld.new_page()
    page.set_viewport_size({"width": 360, "height": 640})
    sign_in(page, live_server, "super")
    page.goto(f"{live_server}/receive/queue")
    page.wait_for_selector("text=Where are you working?")
    shoot(page, "queue-04-picker-360")
    assert _small_targets(page) == []
    page.click("text=WH1 · Main DC")
    page.wait_for_selector(".queue-unit")
    assert page.url.endswith("/receive/queue")
    assert page.locator(".queue-unit").count() == 25 and "page 1 of 2" in page.inner_text(".pager")
    shoot(page, "queue-05-supervisor-360")
    assert _small_targets(page) == []
    page.click("text=Next page")
    page.wait_for_selector("text=page 2 of 2")
    assert page.locator(".queue-unit").count() == 8
    shoot(page, "queue-06-page-2-360")
    assert _small_targets(page) == []
