"""Unit tests for pure scan parsing (app.receiving.scan)."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.catalog.domain import normalize_gtin, upc_e_to_gtin
from app.receiving.scan import ParsedScan, parse_scan

GTIN = "00614141999996"


def test_raw_gs1_with_fnc1_separator() -> None:
    """A raw element string: GTIN, serial, GS, lot; trailing CR/LF from the wedge is ignored."""
    scan = parse_scan("01" + GTIN + "21ABC123" + "\x1d" + "10LOT1\r\n")
    assert scan.kind_hint == "gs1"
    assert (scan.gtin, scan.serial, scan.lot, scan.expiry) == (GTIN, "ABC123", "LOT1", None)
    assert scan.raw == "01" + GTIN + "21ABC123\x1d10LOT1"


def test_parenthesised_form_with_expiry() -> None:
    """The human-readable (AI) form parses, including the (17) expiry date."""
    scan = parse_scan("(01)00614141999996(21)ABC123(10)LOT1(17)261231")
    assert scan.kind_hint == "gs1"
    assert (scan.gtin, scan.serial, scan.lot, scan.expiry) == (GTIN, "ABC123", "LOT1", date(2026, 12, 31))


@pytest.mark.parametrize("separator", ["<GS>", "<gs>", "\x1d"])
def test_literal_gs_is_a_separator(separator: str) -> None:
    """Wedge scanners may type FNC1 as the literal text <GS>."""
    scan = parse_scan("01" + GTIN + "21SER9" + separator + "17270131" + separator)
    assert (scan.kind_hint, scan.serial, scan.expiry) == ("gs1", "SER9", date(2027, 1, 31))


@pytest.mark.parametrize("prefix", ["]C1", "]d2", "]Q3"])
def test_symbology_prefixed_gs1(prefix: str) -> None:
    """GS1 symbology identifiers mark GS1 data, even a GTIN alone."""
    scan = parse_scan(prefix + "01" + GTIN)
    assert (scan.kind_hint, scan.gtin, scan.raw) == ("gs1", GTIN, "01" + GTIN)
    scan = parse_scan(prefix + "01" + GTIN + "10B7")
    assert (scan.kind_hint, scan.lot) == ("gs1", "B7")


def test_non_gs1_symbology_prefix_is_stripped() -> None:
    """An EAN-13 sent with its AIM identifier is still a plain barcode."""
    assert parse_scan("]E04006381333931") == ParsedScan(raw="4006381333931", kind_hint="text")


@pytest.mark.parametrize("code", ["96385074", "614141999996", "4006381333931", GTIN, "12345678"])
def test_bare_digits_are_text_not_gs1(code: str) -> None:
    """A bare EAN-8 / UPC-A / EAN-13 / GTIN-14 is looked up as a barcode, not as GS1."""
    scan = parse_scan(code)
    assert scan == ParsedScan(raw=code, kind_hint="text")


@pytest.mark.parametrize(
    "raw",
    [
        "01" + GTIN,  # GTIN AI alone: ambiguous with a long SKU
        "0100614141999995211234",  # bad GTIN check digit: a misread
        "01006141419999961725023110ABC",  # 31 Feb is not a date
        "(01)123",  # malformed parenthesised form
        "]C1hello",  # GS1 prefix but no GS1 data
    ],
)
def test_unparseable_gs1_lookalikes_are_text(raw: str) -> None:
    """Strings biip cannot parse (or that are not clearly GS1) are never classified gs1."""
    scan = parse_scan(raw)
    assert scan.kind_hint == "text"
    assert (scan.gtin, scan.serial, scan.lot, scan.expiry) == (None, None, None, None)


@pytest.mark.parametrize(("raw", "expected"), [("LP00001234", "LP00001234"), (" lp123456789 \n", "LP123456789")])
def test_lpn(raw: str, expected: str) -> None:
    """LP + 8 or more digits is a licence plate, normalised to upper case."""
    assert parse_scan(raw) == ParsedScan(raw=expected, kind_hint="lpn")


@pytest.mark.parametrize("raw", ["LP1234567", "LP0000123X", "XLP00001234"])
def test_not_lpn(raw: str) -> None:
    """Too few digits or extra characters are not an LPN."""
    assert parse_scan(raw).kind_hint == "text"


def test_location() -> None:
    """LOC: prefix (any case) is a location; the code is exposed."""
    scan = parse_scan("loc: A-01-02\t")
    assert (scan.kind_hint, scan.raw, scan.location_code) == ("location", "LOC:A-01-02", "A-01-02")
    assert parse_scan("SKU-1").location_code is None


def test_control_and_invisible_characters_are_removed() -> None:
    """NUL, CR/LF, TAB and zero-width characters never reach the lookup."""
    assert parse_scan("\x00\u200bSKU-42\r\n\t") == ParsedScan(raw="SKU-42", kind_hint="text")
    assert parse_scan("   ") == ParsedScan(raw="", kind_hint="text")


def test_long_input_is_truncated_text() -> None:
    """Over 200 characters: truncated, kind text, no parsing attempted."""
    scan = parse_scan("01" + GTIN + "21" + "X" * 300)
    assert scan.kind_hint == "text"
    assert len(scan.raw) == 200


def test_non_ascii_digits_are_not_barcodes() -> None:
    """Unicode digits are not GTIN digits."""
    assert normalize_gtin("٠٠٦١٤١٤١٩٩٩٩٩٦") is None
    assert parse_scan("01٠٠٦١٤١٤١٩٩٩٩٩٦21X").kind_hint == "text"


@pytest.mark.parametrize("code", ["614141999996", "0614141999996", "00614141999996", " 00614141999996 "])
def test_normalize_gtin_aliases(code: str) -> None:
    """UPC-A, EAN-13 and GTIN-14 spellings of one product normalise to the same GTIN-14."""
    assert normalize_gtin(code) == GTIN


@pytest.mark.parametrize("code", ["614141999995", "1234567", "123456789", "0000000000000", "ABCDEFGH", "", "6141419999961"])
def test_normalize_gtin_rejects(code: str) -> None:
    """Bad check digits, wrong lengths, all zeros and non-digits give None."""
    assert normalize_gtin(code) is None


def test_normalize_gtin_ean8() -> None:
    """EAN-8 pads to GTIN-14."""
    assert normalize_gtin("96385074") == "00000096385074"


@given(st.text(max_size=400))
def test_parse_scan_never_raises(raw: str) -> None:
    """Any text, including unicode and control characters, yields a bounded ParsedScan."""
    scan = parse_scan(raw)
    assert isinstance(scan, ParsedScan)
    assert scan.kind_hint in {"gs1", "lpn", "location", "text"}
    assert len(scan.raw) <= 200
    if scan.kind_hint != "gs1":
        assert (scan.gtin, scan.serial, scan.lot, scan.expiry) == (None, None, None, None)


@given(
    st.text(alphabet=st.sampled_from(list("0123456789()<>GS]CdQ1\x1d\r\n abcLOP:")), max_size=80)
    | st.builds(lambda s: "01" + GTIN + s, st.text(alphabet=st.sampled_from(list("0123456789\x1dAB()")), max_size=40))
)
def test_parse_scan_never_raises_on_gs1_like_input(raw: str) -> None:
    """Near-GS1 noise exercises biip's error paths without escaping exceptions."""
    scan = parse_scan(raw)
    assert scan.kind_hint in {"gs1", "lpn", "location", "text"}
    if scan.gtin is not None:
        assert normalize_gtin(scan.gtin) == scan.gtin


@given(st.text(alphabet="0123456789", min_size=8, max_size=14))
def test_normalize_gtin_never_raises(code: str) -> None:
    """normalize_gtin returns a 14-digit string or None for any digit string."""
    result = normalize_gtin(code)
    assert result is None or (len(result) == 14 and result.endswith(code))


# --- GS1 Digital Link (a QR code's URI) -------------------------------------------------------
# GTIN 09506000134352, worked by hand: the body 0950600013435 read from the right with weights
# 3,1,3,...: 5*3 + 3 + 4*3 + 3 + 1*3 + 0 + 0 + 0 + 6*3 + 0 + 5*3 + 9 + 0 = 78, check (10 - 8) % 10 = 2.
DL_GTIN = "09506000134352"


def test_digital_link_with_serial_lot_and_expiry() -> None:
    """The path's AIs 01/21/10 in the order labels print them (the standard says 10 before 21), the
    query's 17 an expiry date; any other query parameter is ignored."""
    uri = f"https://id.example.com/01/{DL_GTIN}/21/SERIAL/10/LOT?17=261231&linkType=gs1:pip"
    scan = parse_scan(uri)
    assert scan.kind_hint == "gs1" and scan.raw == uri
    assert (scan.gtin, scan.serial, scan.lot, scan.expiry) == (DL_GTIN, "SERIAL", "LOT", date(2026, 12, 31))


@pytest.mark.parametrize(("uri", "fields"), [
    (f"https://id.example.com/01/{DL_GTIN}/10/LOT/21/SERIAL", (DL_GTIN, "SERIAL", "LOT")),  # the standard's order
    (f"https://id.gs1.org/01/{DL_GTIN}", (DL_GTIN, None, None)),
    (f"HTTPS://ID.EXAMPLE.COM/01/{DL_GTIN}/21/X", (DL_GTIN, "X", None)),  # a scanner in caps lock
    (f"https://brand.example/shop/products/01/{DL_GTIN}/21/ABC%2F12", (DL_GTIN, "ABC/12", None)),  # a path prefix, %-escapes
    ("https://id.example.com/01/00614141999996/21/SN-PHONE-0001\r\n", (GTIN, "SN-PHONE-0001", None)),
])
def test_digital_link_forms(uri: str, fields: tuple) -> None:  # type: ignore[type-arg]
    scan = parse_scan(uri)
    assert scan.kind_hint == "gs1" and (scan.gtin, scan.serial, scan.lot) == fields


@pytest.mark.parametrize("uri", [
    "https://id.example.com/01/09506000134353/21/X",  # a bad check digit: a misread, not data
    f"https://id.example.com/01/{DL_GTIN}/99/X",  # an AI that is no key qualifier of a GTIN
    f"https://id.example.com/01/{DL_GTIN}/21/A/21/B",  # a serial twice
    "https://example.com/products/123",  # a web address, no GTIN
    f"ftp://id.example.com/01/{DL_GTIN}",
])
def test_not_a_digital_link_is_text(uri: str) -> None:
    scan = parse_scan(uri)
    assert scan.kind_hint == "text" and scan.gtin is None and scan.raw == uri


# --- UPC-E, expanded to its UPC-A and kept as a GTIN ------------------------------------------
# Worked by hand (number system 0, six digits d1..d6, check digit; UPC-A = 0, manufacturer, product):
#   04252614: d6 = 1 (0-2): maker d1 d2 d6 0 0 = 42100, product 0 0 d3 d4 d5 = 00526 -> 0 42100 00526;
#     check: odd places 0+2+0+0+5+6 = 13, x3 = 39, even places 4+1+0+0+2 = 7, 46 -> 4: 042100005264.
#   01234531: d6 = 3: maker d1 d2 d3 0 0 = 12300, product 000 d4 d5 = 00045 -> 01230000045, 21 + 8 = 29 -> 1.
#   01234543: d6 = 4: maker d1..d4 0 = 12340, product 0000 d5 = 00005 -> 01234000005, 33 + 4 = 37 -> 3.
#   01234572: d6 = 7 (5-9): maker d1..d5 = 12345, product 0000 d6 = 00007 -> 01234500007, 39 + 9 = 48 -> 2.
@pytest.mark.parametrize(("upc_e", "upc_a"), [
    ("04252614", "042100005264"), ("01234531", "012300000451"), ("01234543", "012340000053"), ("01234572", "012345000072"),
])
def test_upc_e_expands_to_the_gtin_of_its_upc_a(upc_e: str, upc_a: str) -> None:
    assert upc_e_to_gtin(upc_e) == normalize_gtin(upc_a) == "00" + upc_a
    assert parse_scan(upc_e).kind_hint == "text"  # the server looks it up by both readings


@pytest.mark.parametrize("code", ["04252615", "21234567", "425261", "0425261", "042100005264", "0425261A", "", "０4252614"])
def test_not_a_upc_e(code: str) -> None:
    """A wrong check digit, number system 2, six or seven digits (a SKU as likely), a UPC-A, letters,
    full-width digits: not expanded."""
    assert upc_e_to_gtin(code) is None
