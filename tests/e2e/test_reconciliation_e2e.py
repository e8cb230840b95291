"""Reconciliation in Chromium at 1366x900: the 3PL's partner uploads its snapshot at T and accepts
it; a supervisor reviews the variance lines, opens one, marks its unit missing through the ledger
and resolves it; expected against received. Screenshots of each, looked at."""
from __future__ import annotations

from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from app.db import make_engine
from tests.e2e.conftest import shoot, sign_in
from tests.recon_scenario import SNAPSHOT, build_history, make_source


def test_a_snapshot_is_reviewed_and_a_lost_unit_corrected(live_server, e2e_world, e2e_db_url, desktop, browser):
    engine = make_engine(e2e_db_url)
    with Session(engine, expire_on_commit=False) as s:
        make_source(s, e2e_world)
        t, units = build_history(s, e2e_world, gap=1.1)
        lpn = s.get(type(units["creams"][0]), units["creams"][0].id).lpn
    engine.dispose()
    page = desktop.new_page()
    sign_in(page, live_server, "partner")
    page.goto(f"{live_server}/reconciliation/")
    page.fill("input[name=as_of]", t.strftime("%Y-%m-%dT%H:%M:%S"))
    page.set_input_files("input[name=file]", files=[{"name": "fastlane-stock.csv", "mimeType": "text/csv",
                                                     "buffer": SNAPSHOT.encode()}])
    shoot(page, "recon-upload-desktop")
    page.click("button:has-text('Upload and preview')")
    page.wait_for_selector("button:has-text('Accept and compare')")
    shoot(page, "recon-preview-desktop")
    page.click("button:has-text('Accept and compare')")
    page.wait_for_selector(".recon-lines")
    review_url = page.url
    supervisor = browser.new_context(viewport={"width": 1366, "height": 900})
    sup = supervisor.new_page()
    sign_in(sup, live_server, "super")
    sup.click("nav >> text=Reconciliation")
    sup.click(".console-table a >> nth=0")
    sup.wait_for_selector(".recon-lines")
    table = sup.inner_text(".recon-lines")
    assert "TEE-BLU-M" in table and "PHN-X1-128" in table and "timing: moves posted in Dockhand after T" in table
    assert "holds" in sup.inner_text(".recon-roll")
    shoot(sup, "recon-review-desktop")
    assert sup.url.split("?")[0] == review_url.split("?")[0]
    sup.click(".recon-lines tr:has-text('quarantine') a >> nth=0")
    sup.wait_for_selector("#variance")
    assert lpn in sup.inner_text("#variance")
    sup.fill("input[name=lpn]", lpn)
    sup.fill("input[name=reason]", "not on its shelf at the count")
    sup.click("button:has-text('Mark missing')")
    sup.wait_for_selector("text=is now missing in the ledger")
    sup.select_option("select[name=resolution]", "lost_unit")
    sup.fill("textarea[name=notes]", "cream gone from quarantine cage")
    sup.click("#variance button:has-text('Save')")
    sup.wait_for_selector("text=Saved.")
    shoot(sup, "recon-variance-desktop")
    sup.click("a:has-text('Snapshot')")
    sup.wait_for_selector(".recon-lines")
    assert "lost_unit" in sup.inner_text(".recon-lines")
    sup.goto(f"{live_server}/reconciliation/expected?bucket=in_transit")
    assert "RMA-5001" in sup.inner_text("main")
    shoot(sup, "recon-expected-desktop")
    supervisor.close()
    engine = create_engine(e2e_db_url)
    with engine.connect() as conn:
        state = conn.execute(text("SELECT state FROM return_units WHERE lpn = :l"), {"l": lpn}).scalar()
    engine.dispose()
    assert state == "missing"
