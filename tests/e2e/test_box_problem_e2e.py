"""An empty box on a Pixel 5: the worker reports it with photos from the parcel card, a supervisor
sees the photos at the desk and takes the exception (issue 18). Screenshots to look at."""
from __future__ import annotations

import pytest
from PIL import Image

from tests.e2e.conftest import shoot, sign_in, too_small

pytestmark = pytest.mark.e2e


def test_an_empty_box_goes_from_the_dock_to_a_supervisor(live_server, e2e_world, handheld, desktop, tmp_path):
    shots = []
    for i, colour in enumerate(((150, 110, 60), (90, 70, 40))):
        path = tmp_path / f"box{i}.jpg"
        Image.new("RGB", (1200, 900), colour).save(path, "JPEG")
        shots.append(str(path))
    page = handheld.new_page()
    sign_in(page, live_server, "worker")
    page.click("text=WH1 · Main DC")
    page.fill("#scan", e2e_world.tracking.tracking_number)
    page.press("#scan", "Enter")
    page.wait_for_selector("#parcel")
    page.click("text=Problem with the box?")
    page.check("input[name=problem][value=empty_box]")
    page.set_input_files("#box-photo", shots)
    page.fill("#box-note", "Tape cut and resealed")
    shoot(page, "box-problem-form-handheld")
    assert too_small(page, "#parcel") == []
    page.click("text=Report to the desk")
    page.wait_for_selector("text=reported to the desk with 2 photos")
    shoot(page, "box-problem-reported-handheld")

    desk = desktop.new_page()
    sign_in(desk, live_server, "super")
    desk.goto(f"{live_server}/desk/exceptions/empty_box")
    assert "due in 24 h" in desk.inner_text("#queue") and "nobody owns it" in desk.inner_text("#queue")
    desk.click("#queue .case-link")
    desk.wait_for_selector("#xcase")
    assert desk.locator("#xcase .thumbs img").count() == 2
    desk.click("text=Take it")
    desk.wait_for_selector("text=Super owns this exception now.")
    assert "Given to Super" in desk.inner_text("#xcase .timeline")
    shoot(desk, "box-problem-exception-desktop")
    desk.click("text=Desk")
    desk.goto(f"{live_server}/desk/exceptions/empty_box?mine=1")
    assert "owner: Super" in desk.inner_text("#queue")
