"""Reconciliation's pure rules: the bucket mapping, reading a snapshot file, the kinds of line and
their likely cause, the zero-out guard and the roll-forward."""
from __future__ import annotations

from datetime import timezone

import pytest

from app.reconciliation.domain import (MappingError, as_of, classify, compare, guard_refuses, likely_cause, parse_csv,
                                       parse_mapping, roll_forward, zeroed_items)

MAP = {"SELLABLE": "available", "DAMAGED": "quarantine"}


def test_a_mapping_is_read_line_by_line_and_refused_with_its_line():
    assert parse_mapping("sellable = available\n# a comment\n\nDAMAGED=Quarantine") == MAP
    for text, says in (("SELLABLE available", "Line 1"), ("A = nowhere", "not a state"), ("A = available\nA = received", "twice"),
                       ("", "at least one"), ("=HACK = available", "Line 1")):
        with pytest.raises(MappingError, match=says):
            parse_mapping(text)


def test_reading_a_file_names_each_bad_line():
    data = ("warehouse,merchant,sku,bucket,quantity\n"
            "WH1,ACME,TEE,SELLABLE,2\n"
            "WH1,,TEE,DAMAGED,0\n"
            "WH1,ACME,TEE,SELLABLE,3\n"
            "WH1,ACME,=cmd,SELLABLE,1\n"
            "WH1,ACME,TEE,ELSEWHERE,1\n"
            "WH1,ACME,TEE,DAMAGED,x\n").encode()
    read = parse_csv(data, MAP)
    assert [(r.line, r.state, r.quantity, r.merchant) for r in read.rows] == [(2, "available", 2, "ACME"), (3, "quarantine", 0, None)]
    assert [(e.line, e.column) for e in read.errors] == [(4, ""), (5, "sku"), (6, "bucket"), (7, "quantity")]


@pytest.mark.parametrize("data, says", [
    (b"\xff\xfewarehouse", "not UTF-8"), (b"warehouse,sku\x00", "NUL"), (b"", "missing column"),
    (b"warehouse,merchant,sku,bucket,quantity\n", "no rows"), (b'warehouse,merchant,sku,bucket,quantity\n"WH1,A', "cannot be read"),
    (b'"unclosed\n', "cannot be read"),
])
def test_files_that_cannot_be_read_say_why(data, says):
    read = parse_csv(data, MAP)
    assert not read.rows and says in read.errors[0].message


def test_lines_their_kind_and_cause():
    assert (classify(2, 2), classify(1, 3), classify(3, 1)) == ("match", "over", "short")
    lines = compare({(1, None, 5, "available"): 2, (1, None, 6, "received"): 1}, {(1, None, 5, "available"): 3})
    assert [(ln.key[2], ln.ledger_qty, ln.snapshot_qty, ln.kind) for ln in lines] == [(5, 2, 3, "over"), (6, 1, 0, "short")]
    assert likely_cause(2, 3, 1, 0).startswith("timing: moves posted in Dockhand after T")
    assert likely_cause(1, 0, 0, 1).startswith("timing: the source has not synced")
    assert likely_cause(1, 2, 0, 0).startswith("unexplained")
    assert likely_cause(1, 1, 5, 5) == ""


def test_the_guard_asks_when_many_held_items_are_counted_zero():
    ledger = {(1, None, p, "available"): 1 for p in range(10)}
    assert zeroed_items(ledger, {(1, None, 0, "available"): 1}) == 9
    assert guard_refuses(9, 10) and guard_refuses(5, 25) and not guard_refuses(4, 4) and not guard_refuses(5, 26)


def test_the_roll_forward_counts_on_hand_units_in_and_out():
    check = roll_forward(10, [(None, "received", 4), ("received", "available", 3), ("available", "disposed", 2),
                              ("quarantine", "missing", 1), ("missing", "available", 1)], 12)
    assert (check.received, check.moved_out, check.expected, check.holds) == (5, 3, 12, True)
    assert not roll_forward(0, [(None, "received", 1)], 2).holds


def test_as_of_reads_iso_times_as_utc_and_refuses_the_rest():
    assert as_of("2026-12-01T06:00:00Z").tzinfo == timezone.utc
    assert as_of("2026-12-01T06:00").hour == 6
    for bad in ("", "yesterday", "2026-13-01"):
        with pytest.raises(ValueError):
            as_of(bad)
