"""The CSV import in Chromium at 1366x900: an admin uploads a file of returns with a bad row, sees
the preview list it by line, applies the rest; the preview also fits a handheld's width."""
from __future__ import annotations

from sqlalchemy import create_engine, text

from tests.e2e.conftest import shoot, sign_in

RETURNS = (
    "number,merchant,channel,warehouse,order_number,customer_ref,customer_name,carrier,tracking_numbers,sku,quantity,reason_code\n"
    "RMA-7001,ACME,web,WH1,SO-1001,C-1,Dana Buyer,UPS,1ZE2E0000000001,TEE-BLU-M,1,wrong_size\n"
    "RMA-7001,ACME,web,WH1,SO-1001,C-1,Dana Buyer,UPS,1ZE2E0000000001,HB-CREAM-50,1,defective\n"
    "RMA-7002,ACME,web,WH1,,C-2,Eli Shopper,UPS,1ZE2E0000000002,NOT-A-SKU,1,defective\n"
    "RMA-7003,ACME,web,WH1,,C-3,\"=HYPERLINK(\"\"http://evil.example\"\",\"\"x\"\")\",UPS,1ZE2E0000000003,TEE-BLU-M,-1,defective\n"
)


def test_an_admin_previews_a_file_with_bad_rows_and_applies_the_good_returns(live_server, e2e_world, e2e_db_url, desktop,
                                                                             handheld):
    engine = create_engine(e2e_db_url)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO reason_codes (code, label, active) VALUES ('defective', 'Defective', true), "
                          "('wrong_size', 'Wrong size', true)"))
    page = desktop.new_page()
    sign_in(page, live_server, "admin")
    page.click("nav >> text=Import")
    page.select_option("select[name=kind]", "rmas")
    page.set_input_files("input[name=file]", files=[{"name": "returns-week-48.csv", "mimeType": "text/csv",
                                                     "buffer": RETURNS.encode()}])
    shoot(page, "import-upload-desktop")
    page.click("button:has-text('Upload and preview')")
    page.wait_for_selector("h1:has-text('Preview: returns-week-48.csv')")
    errors = page.inner_text(".import-errors")
    assert "unknown SKU NOT-A-SKU" in errors and "-1 is not a quantity" in errors and "spreadsheet formula" in errors
    assert "Applied in part" in page.inner_text(".import-policy")
    assert "HYPERLINK" not in page.inner_text("main")
    shoot(page, "import-preview-desktop")
    preview_url = page.url

    phone = handheld.new_page()
    sign_in(phone, live_server, "admin")
    phone.goto(preview_url)
    phone.wait_for_selector(".import-errors")
    shoot(phone, "import-preview-handheld")

    page.click("button:has-text('Apply 1 return')")
    page.wait_for_selector("text=1 created")
    assert "2 left out" in page.inner_text("#import")
    shoot(page, "import-applied-desktop")
    with engine.connect() as conn:
        lines = conn.execute(text("SELECT count(*) FROM rma_lines l JOIN rmas r ON r.id = l.rma_id "
                                  "WHERE r.number = 'RMA-7001'")).scalar()
        others = conn.execute(text("SELECT count(*) FROM rmas WHERE number IN ('RMA-7002', 'RMA-7003')")).scalar()
    engine.dispose()
    assert (lines, others) == (2, 0)
    page.click("nav >> text=Audit log")
    assert "csv import applied" in page.inner_text("main") and "returns-week-48.csv" in page.inner_text("main")
