"""The CSV import (/admin/import): upload, preview with every bad row by line number, apply
through the API's use cases; admins only; one effect however often it is applied; no input a 500."""
from __future__ import annotations

import csv
import html
import io
import threading
import uuid

import pytest
from sqlalchemy import func, select

from app.catalog.models import Product, ProductBarcode
from app.disposition.models import ReasonCode
from app.web.exports import cell as neutralised
from app.intake.models import CsvImport
from app.ledger.models import AuditEntry, IdempotencyRecord
from app.orders.models import CarrierTracking, Order, Rma, RmaLine
from tests.conftest import login

HX = {"HX-Request": "true"}
RMA_HEADER = "number,merchant,channel,warehouse,order_number,customer_ref,customer_name,carrier,tracking_numbers,sku,quantity,reason_code\n"


def key() -> str:
    return uuid.uuid4().hex


def count(session, model, *where) -> int:  # type: ignore[no-untyped-def]
    session.rollback()
    return session.scalar(select(func.count()).select_from(model).where(*where))


@pytest.fixture
def reasons(session, world):  # type: ignore[no-untyped-def]
    session.add_all([ReasonCode(code="defective", label="Defective"), ReasonCode(code="wrong_size", label="Wrong size")])
    session.commit()


def upload(client, kind: str, data: bytes | str, name: str = "file.csv", form_key: str | None = None):  # type: ignore[no-untyped-def]
    raw = data.encode() if isinstance(data, str) else data
    return client.post("/admin/import/", data={"key": form_key or key(), "kind": kind, "file": (io.BytesIO(raw), name)},
                       content_type="multipart/form-data")


def uploaded(client, kind: str, data: bytes | str, name: str = "file.csv") -> int:  # type: ignore[no-untyped-def]
    resp = upload(client, kind, data, name)
    assert resp.status_code == 303, resp.get_data(as_text=True)[:800]
    return int(resp.headers["Location"].rstrip("/").split("/")[-1])


def rma_rows(n: int, start: int = 1, sku: str = "TEE-BLU-M") -> str:
    return "".join(f"R-{i},ACME,web,WH1,,C-{i},Cust {i},UPS,1ZIMP{i:08d},{sku},1,defective\n" for i in range(start, start + n))


@pytest.mark.parametrize("username", ["worker", "super", "partner"])
def test_only_admins_import_and_a_refusal_writes_nothing(client, world, session, reasons, username):
    login(client, "admin")
    made = uploaded(client, "rmas", RMA_HEADER + rma_rows(2))
    client.post("/logout")
    login(client, username)
    before = (count(session, CsvImport), count(session, Rma), count(session, AuditEntry), count(session, IdempotencyRecord))
    for method, path in [("GET", "/admin/import/"), ("GET", f"/admin/import/{made}"), ("POST", f"/admin/import/{made}/apply"),
                         ("GET", "/admin/import/template/rmas.csv"), ("GET", f"/admin/import/{made}/errors.csv")]:
        assert client.open(path, method=method, data={"key": key()} if method == "POST" else None).status_code == 403, path
    assert upload(client, "rmas", RMA_HEADER + rma_rows(2, 50)).status_code == 403
    after = (count(session, CsvImport), count(session, Rma), count(session, AuditEntry), count(session, IdempotencyRecord))
    assert after == before
    assert count(session, CsvImport, CsvImport.status == "previewed") == 1


def test_the_templates_load_products_then_orders_then_returns(client, world, session, reasons):
    """Each kind's template is a file the import takes: applied in turn, they make a return the dock can find."""
    login(client, "admin")
    page = client.get("/admin/import/").get_data(as_text=True)
    assert "Refused whole" in page and "Applied in part" in page and 'href="/admin/import/template/rmas.csv"' in page
    for kind, model, made in (("products", Product, 2), ("orders", Order, 1), ("rmas", Rma, 1)):
        template = client.get(f"/admin/import/template/{kind}.csv")
        assert template.status_code == 200 and template.mimetype == "text/csv"
        before = count(session, model)
        run = uploaded(client, kind, template.data, f"{kind}.csv")
        preview = client.get(f"/admin/import/{run}").get_data(as_text=True)
        assert "No bad rows" in preview and "Apply" in preview, preview
        done = client.post(f"/admin/import/{run}/apply", headers=HX)
        assert done.status_code == 200 and f"{made} created" in done.get_data(as_text=True), done.get_data(as_text=True)
        assert count(session, model) == before + made
    rma = session.scalars(select(Rma).where(Rma.number == "RMA-9001")).one()
    assert [(ln.quantity, ln.resolution, ln.exchange_sku) for ln in sorted(rma.lines, key=lambda ln: ln.id)] == [
        (1, "refund", None), (1, "exchange", "PHN-X2-256")]
    assert rma.order.number == "SO-2001" and [t.tracking_number for t in rma.trackings] == ["1Z999AA10123456785"]
    assert session.scalars(select(ProductBarcode.code).join(Product).where(Product.sku == "PHN-X2-256")).all() == ["05901234123457"]
    audit = session.scalars(select(AuditEntry).where(AuditEntry.action == "csv_import.applied").order_by(AuditEntry.id)).all()
    assert [(a.details["after"]["kind"], a.details["after"]["created"]) for a in audit] == [("products", 2), ("orders", 1), ("rmas", 1)]
    assert all(len(a.details["after"]["sha256"]) == 64 and a.actor_name == "Admin" for a in audit)
    log = client.get("/admin/audit").get_data(as_text=True)
    assert "csv import applied" in log and "rmas.csv" in log


def test_a_hostile_file_gets_each_bad_row_by_line_and_writes_nothing_it_should_not(client, world, session, reasons):
    login(client, "admin")
    hostile = (RMA_HEADER
               + "R-1,ACME,web,WH1,,C-1,Ann,UPS,1ZH1,TEE-BLU-M,1,defective\n"          # 2: good
               + "R-2,ACME,web,WH1,,C-2,Bob,UPS,1ZH2,NOPE-404,1,defective\n"           # 3: unknown SKU
               + "R-3,ACME,web,WH1,,C-3,Cy,UPS,1ZH3,TEE-BLU-M,-2,defective\n"          # 4: negative quantity
               + "R-4,ACME,web,WH1,,C-4,Di,UPS,1ZH4,TEE-BLU-M,1,defective\n"           # 5: good ...
               + "R-4,ACME,web,WH1,,C-4,Di,UPS,1ZH4,TEE-BLU-M,1,defective\n"           # 6: ... repeated
               + 'R-5,ACME,web,WH1,,C-5,"=HYPERLINK(""http://evil.example"",""x"")",UPS,1ZH5,TEE-BLU-M,1,defective\n'  # 7
               + "R-6,ACME,web,WH1,,C-6,Ed,UPS,1ZH6,TEE-BLU-M,1,meh\n"                 # 8: unknown reason
               + "R-7,,,,,,,,,TEE-BLU-M,1,defective\n"                               # 9: no merchant on any row
               + f"{world.rma.number},ACME,web,WH1,,C-8,Gus,UPS,1ZH8,TEE-BLU-M,1,defective\n")  # 10: number taken
    run = uploaded(client, "rmas", hostile)
    preview = client.get(f"/admin/import/{run}")
    assert preview.status_code == 200
    session.rollback()
    errors = {(line, col) for line, col, _ in session.get(CsvImport, run).preview["errors"]}
    assert errors == {(3, "sku"), (4, "quantity"), (6, ""), (7, "customer_name"), (8, "reason_code"), (9, "merchant"),
                      (9, "channel"), (9, "warehouse"), (10, "number")}
    text = html.unescape(preview.get_data(as_text=True))
    for said in ("unknown SKU NOPE-404", "-2 is not a quantity", "repeats line 5", "a spreadsheet formula is not accepted",
                 "unknown reason code meh", "is empty on every row of R-7", f"{world.rma.number} exists already",
                 "Applied in part", "Apply 1 return</button>"):
        assert said in text, said
    assert "HYPERLINK" not in text  # the formula is named, not shown
    before = count(session, Rma)
    done = client.post(f"/admin/import/{run}/apply", headers=HX).get_data(as_text=True)
    assert "1 created" in done and "7 left out" in done, done
    assert count(session, Rma) == before + 1
    assert session.scalars(select(Rma.number).where(Rma.number.like("R-%"))).all() == ["R-1"]
    exported = list(csv.reader(io.StringIO(client.get(f"/admin/import/{run}/errors.csv").data.decode("utf-8-sig"))))
    assert exported[0] == ["line", "column", "problem", "when"]
    assert not any(cell.startswith(("=", "+", "-", "@")) for row in exported for cell in row)
    assert any(row[2].startswith("'-2 is not a quantity") for row in exported)


@pytest.mark.parametrize("data, said", [
    (b"sku,name\nA,B\n", "Missing column category, unit_value"),
    (b"sku,name,category,unit_value,colour\nA,B,apparel,1.00,red\n", "Unknown column 'colour'"),
    (b"", "none was sent, or it is empty"),
    (b"sku,name,category,unit_value\n", "a header but no rows"),
    ("sku,name,category,unit_value\nTEE-1,Caf\u00e9,apparel,1.00\n".encode("latin-1"), "is not UTF-8 text (byte 0xE9)"),
    (b"sku,name,category,unit_value\nTEE-1,\"Tee\x00\",apparel,1.00\n", "holds a NUL character"),
    (b"\xff\xfe\x00\x00garbage", "is not UTF-8"),
])
def test_a_file_that_cannot_be_read_is_refused_whole_with_its_reason(client, world, session, data, said):
    login(client, "admin")
    resp = upload(client, "products", data)
    if resp.status_code == 303:
        resp = client.get(resp.headers["Location"])
        assert resp.status_code == 200 and "nothing of it will be applied" in resp.get_data(as_text=True)
        assert "Apply" not in resp.get_data(as_text=True).split("Bad rows")[0].split("SHA-256")[1]
    else:
        assert resp.status_code == 422
    assert said in html.unescape(resp.get_data(as_text=True))
    assert count(session, Product) == 3


def test_a_returns_file_with_a_torn_row_is_refused_whole(client, world, session, reasons):
    """A row with the wrong number of cells cannot be tied to its return: applied without it, a
    return would lack a line. The file goes nowhere."""
    login(client, "admin")
    run = uploaded(client, "rmas", RMA_HEADER + rma_rows(2) + "R-1,ACME,web,WH1,,C-1,Ann,UPS,1ZIMP00000001,HB-CREAM-50\n")
    text = html.unescape(client.get(f"/admin/import/{run}").get_data(as_text=True))
    assert "has 10 cells; the header has 12" in text and "cannot be told which return it belongs to" in text
    assert "Apply " not in text
    assert client.post(f"/admin/import/{run}/apply", headers=HX).status_code == 422
    assert count(session, Rma) == 1


def test_a_products_file_with_a_bad_row_is_refused_whole_even_when_apply_is_forced(client, world, session):
    login(client, "admin")
    run = uploaded(client, "products", "sku,name,category,unit_value,barcodes\n"
                                       "NEW-1,New one,apparel,5.00,\n"
                                       "NEW-2,New two,toys,5.00,\n"
                                       "NEW-3,New three,apparel,5.00,12345\n"
                                       "NEW-1,Again,apparel,5.00,\n")
    text = html.unescape(client.get(f"/admin/import/{run}").get_data(as_text=True))
    assert "Refused whole" in text and "Apply " not in text
    for said in ("'toys' is not one of", "'12345' is not a GTIN", "NEW-1 is also on line 2"):
        assert said in text, said
    forced = client.post(f"/admin/import/{run}/apply", headers=HX)
    assert forced.status_code == 422 and "refused whole" in forced.get_data(as_text=True)
    assert count(session, Product) == 3 and count(session, AuditEntry, AuditEntry.action == "csv_import.applied") == 0
    assert client.get(f"/admin/import/{run}").status_code == 200  # the claim was given back


def test_an_oversize_file_gets_a_clear_page_not_a_bare_413(client, world, session, app):
    login(client, "admin")
    resp = upload(client, "rmas", b"x" * (100 * 1024 * 1024))
    text = resp.get_data(as_text=True)
    assert resp.status_code == 413 and "That file is 100 MB; the import takes files up to 10 MB" in text
    assert "<h1>Import a CSV file</h1>" in text
    app.config["IMPORT_MAX_BYTES"] = 1024 * 1024
    big = upload(client, "rmas", RMA_HEADER + "x" * (1024 * 1024))
    assert big.status_code == 422 and "the import takes files up to 1 MB" in big.get_data(as_text=True)
    assert count(session, CsvImport) == 0


def test_applying_twice_or_the_same_file_again_changes_nothing(client, world, session, reasons):
    """The protection: the import's claim (a second Apply answers the first result, with no second
    audit entry) and the per-item keys of the file's hash (the same file uploaded again creates
    nothing: without them its returns would be refused as existing, not answered as done)."""
    login(client, "admin")
    data = RMA_HEADER + rma_rows(3)
    form_key = key()
    first = upload(client, "rmas", data, form_key=form_key)
    assert upload(client, "rmas", data, form_key=form_key).headers["Location"] == first.headers["Location"]  # double upload
    run = int(first.headers["Location"].rstrip("/").split("/")[-1])
    assert "3 created" in client.post(f"/admin/import/{run}/apply", headers=HX).get_data(as_text=True)
    again = client.post(f"/admin/import/{run}/apply", headers=HX).get_data(as_text=True)
    assert "applied already: the repeat changed nothing" in again and "3 created" in again
    assert count(session, Rma, Rma.number.like("R-%")) == 3 and count(session, RmaLine) == 2 + 3
    assert count(session, AuditEntry, AuditEntry.action == "csv_import.applied") == 1
    assert count(session, AuditEntry, AuditEntry.action == "rma.created") == 3
    rerun = uploaded(client, "rmas", data, "again.csv")
    assert "This same file was applied" in client.get(f"/admin/import/{rerun}").get_data(as_text=True)
    done = client.post(f"/admin/import/{rerun}/apply", headers=HX).get_data(as_text=True)
    assert "0 created" in done and "3 unchanged" in done and "0 refused" in done, done
    assert count(session, Rma, Rma.number.like("R-%")) == 3
    assert count(session, AuditEntry, AuditEntry.action == "rma.created") == 3
    assert count(session, CarrierTracking, CarrierTracking.tracking_number.like("1ZIMP%")) == 3


@pytest.mark.pg_only
def test_two_applies_at_once_have_one_effect(app, world, session, reasons):
    client = login(app.test_client(), "admin")
    run = uploaded(client, "rmas", RMA_HEADER + rma_rows(40))
    answers: list[int] = []

    def apply() -> None:
        c = login(app.test_client(), "admin")
        answers.append(c.post(f"/admin/import/{run}/apply", headers=HX).status_code)

    threads = [threading.Thread(target=apply) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert 200 in answers and set(answers) <= {200, 409}, answers
    assert count(session, Rma, Rma.number.like("R-%")) == 40
    assert count(session, AuditEntry, AuditEntry.action == "csv_import.applied") == 1
    assert count(session, AuditEntry, AuditEntry.action == "rma.created") == 40


def test_orders_go_through_put_orders_and_a_bad_order_refuses_the_file(client, world, session):
    login(client, "admin")
    head = "number,merchant,channel,customer_ref,sku,quantity,unit_price,serials,placed_at\n"
    bad = uploaded(client, "orders", head + "SO-7,ACME,web,C-1,TEE-BLU-M,1,20.00,,2026-11-30T10:00:00Z\n"
                                            "SO-8,ACME,web,C-1,NOPE,1,20.00,,\n"
                                            "SO-9,ACME,web,C-1,PHN-X1-128,1,20.00,S1 S2,\n"
                                            "SO-10,ACME,web,C-1,TEE-BLU-M,1,20.00,,2026-11-30 10:00\n")
    text = client.get(f"/admin/import/{bad}").get_data(as_text=True)
    for said in ("unknown SKU NOPE", "2 serials for a quantity of 1", "needs its offset"):
        assert said in text, said
    assert count(session, Order) == 1
    good = uploaded(client, "orders", head + "SO-7,ACME,web,C-1,TEE-BLU-M,1,20.00,,2026-11-30T10:00:00Z\n"
                                             "SO-7,,,,PHN-X1-128,1,600.00,SN-9,\n")
    assert "1 created" in client.post(f"/admin/import/{good}/apply", headers=HX).get_data(as_text=True)
    session.rollback()
    order = session.scalars(select(Order).where(Order.number == "SO-7")).one()
    assert sorted((ol.product.sku, [s.serial for s in ol.serials]) for ol in order.lines) == [
        ("PHN-X1-128", ["SN-9"]), ("TEE-BLU-M", [])]


@pytest.mark.parametrize("data", [b"\x00" * 50, b"number\n" + b"\"" * 3000, b",,,,\n,,,\n", b"\r\r\r\n\n",
                                  "number,merchant\n\u202e\u0000x,y\n".encode(), b"a,b\n" * 5000,
                                  ("\ufeff" + RMA_HEADER + "R-1,ACME,web,WH1,,,,,,TEE-BLU-M,99999999999999999999,defective\n").encode()])
def test_no_file_is_a_server_error(client, world, session, data):
    login(client, "admin")
    for kind in ("products", "orders", "rmas"):
        resp = upload(client, kind, data)
        assert resp.status_code in (303, 422), resp.status_code
        if resp.status_code == 303:
            assert client.get(resp.headers["Location"]).status_code == 200
    for bad in ("/admin/import/99999", "/admin/import/template/nope.csv", "/admin/import/99999/errors.csv"):
        assert client.get(bad).status_code == 404
    assert client.post("/admin/import/99999/apply", headers=HX).status_code == 404
    assert client.post("/admin/import/", data={"key": key(), "kind": "rmas"}).status_code == 422
    assert client.post("/admin/import/", data={"key": key(), "kind": "bogus", "file": (io.BytesIO(b"x"), "x.csv")},
                       content_type="multipart/form-data").status_code == 422


def test_exported_cells_are_neutralised():
    assert neutralised('=HYPERLINK("http://evil.example","x")') == '\'=HYPERLINK("http://evil.example","x")'
    assert [neutralised(v) for v in ("+1", "-1", "@SUM(A1)", "\tx", "ok", None, 3)] == ["'+1", "'-1", "'@SUM(A1)", "'\tx", "ok", "", "3"]
