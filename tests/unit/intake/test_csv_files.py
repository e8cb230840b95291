"""Reading a CSV file of products, orders or returns: pure, no database. Every bad row is named by
its line number (the header is line 1) and column."""
from __future__ import annotations

from decimal import Decimal

from app.intake.domain import KINDS, parse, template_rows

CATEGORIES = ("electronics", "apparel", "health_beauty")


def read(kind: str, text: str):  # type: ignore[no-untyped-def]
    return parse(kind, text.encode(), categories=CATEGORIES)


def test_each_template_reads_without_a_bad_row():
    for kind in KINDS:
        text = "\n".join(",".join(row) for row in template_rows(kind)) + "\n"
        parsed = read(kind, text)
        assert parsed.errors == [] and parsed.rows == 2 and parsed.good_items(), kind


def test_rows_of_one_number_make_one_item_and_later_rows_may_leave_its_head_empty():
    parsed = read("rmas", "number,merchant,channel,warehouse,sku,quantity,reason_code,tracking_numbers\n"
                          "r-1,acme,web,wh1,tee-1,2,defective,1ZA 1ZB\n"
                          "\n"
                          "\"r-1\",,,,tee-2,1,wrong_size,1ZB;1ZC\n"
                          "R-2,ACME,web,WH1,TEE-1,1,defective,\n")
    assert parsed.errors == [] and parsed.rows == 3
    first, second = parsed.items
    assert first.key == "R-1" and first.lines == (2, 4) and first.fields["merchant"] == "ACME"
    assert first.fields["tracking_numbers"] == ("1ZA", "1ZB", "1ZC")
    assert [(r["sku"], r["quantity"]) for r in first.rows] == [("TEE-1", 2), ("TEE-2", 1)]
    assert second.lines == (5,)


def test_bad_rows_are_named_by_line_and_column_and_a_quoted_newline_keeps_the_count():
    parsed = read("products", "sku,name,category,unit_value,serial_tracked,barcodes\n"
                              "A-1,\"Two\nlines\",apparel,1.50,no,\n"
                              "A-2,Ok,apparel,-1,no,\n"
                              "A-3,+cmd|' /C calc'!A0,apparel,1.00,maybe,\n"
                              "A-1,Again,apparel,1.999,no,123\n")
    assert sorted((e.line, e.column) for e in parsed.errors) == [(4, "unit_value"), (5, "name"), (5, "serial_tracked"),
                                                                 (6, "barcodes"), (6, "sku"), (6, "unit_value")]
    assert parsed.items[0].fields["name"] == "Two lines" and parsed.items[0].fields["unit_value"] == Decimal("1.50")
    assert parsed.good_items() == []  # products: refused whole


def test_returns_with_a_bad_row_are_left_out_whole_and_the_others_go():
    parsed = read("rmas", "number,merchant,channel,warehouse,sku,quantity,reason_code,resolution,exchange_sku\n"
                          "R-1,ACME,web,WH1,TEE-1,1,defective,,\n"
                          "R-2,ACME,web,WH1,TEE-1,1,defective,,\n"
                          "R-2,GLOBEX,web,WH1,TEE-2,0,defective,exchange,\n"
                          "R-3,ACME,web,WH1,TEE-1,1,defective,,\n"
                          "R-3,ACME,web,WH1,TEE-1,1,defective,,\n")
    assert sorted((e.line, e.column) for e in parsed.errors) == [(4, "exchange_sku"), (4, "merchant"), (4, "quantity"), (6, "")]
    assert [it.key for _, it in parsed.good_items()] == ["R-1"]


def test_a_file_that_is_not_a_csv_of_the_kind_is_refused_whole():
    assert read("orders", "sku,name\n").errors[0].message.startswith("Unknown column 'name'")
    assert "Missing column" in read("orders", "number,merchant\nX,Y\n").errors[0].message
    latin = parse("products", "sku,name,category,unit_value\n\nA,Caf\u00e9,apparel,1.00\n".encode("latin-1"), categories=CATEGORIES)
    assert latin.fatal and latin.errors[0].line == 3 and "0xE9" in latin.errors[0].message
    assert parse("products", b"", categories=CATEGORIES).fatal
    assert parse("products", "\ufeffsku,name,category,unit_value\nA,B,apparel,1\n".encode(), categories=CATEGORIES).errors == []
