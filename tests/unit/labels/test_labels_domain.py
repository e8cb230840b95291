"""Pure label rules added for relabels and reprints: GTIN display forms, open-box selling, the cookie."""
from __future__ import annotations

import pytest

from app.errors import ValidationFailed
from app.labels.domain import display_gtin, humanise, sells_as_open_box
from app.labels.forms import parse_choice, parse_int, parse_remembered, path_of, safe_next


@pytest.mark.parametrize(("stored", "printed"), [
    ("04006381333931", "4006381333931"),   # EAN-13
    ("00036000291452", "036000291452"),    # UPC-A keeps its own leading zero
    ("00614141999996", "614141999996"),    # UPC-A
    ("00000096385074", "96385074"),        # GTIN-8
    ("10614141999993", "10614141999993"),  # GTIN-14 (a case code) stays as it is
    ("TSHIRT-BLU-M", "TSHIRT-BLU-M"),      # not a GTIN: unchanged
    (" 04006381333931 ", "4006381333931"),
])
def test_display_gtin(stored: str, printed: str) -> None:
    """A stored GTIN-14 is printed in its shortest standard form."""
    assert display_gtin(stored) == printed


@pytest.mark.parametrize(("grade", "packaging", "open_box"), [
    (None, None, False), ("A", "sealed", False), ("A", None, False), ("A", "opened", True),
    ("B", "sealed", True), ("C", "damaged", True), ("D", None, True),
])
def test_sells_as_open_box(grade: str | None, packaging: str | None, open_box: bool) -> None:
    """Only an inspected unit that is not as new sells as its open-box variant."""
    assert sells_as_open_box(grade, packaging) is open_box


def test_humanise() -> None:
    """Codes read as words on a label."""
    assert humanise("return_to_vendor") == "return to vendor"
    assert humanise(None) == ""


@pytest.mark.parametrize(("cookie", "printer_id", "stock"), [
    ("p:12", 12, "4x6"), ("browser:2x1", None, "2x1"), ("browser:a4", None, "a4"), ("", None, "4x6"),
    (None, None, "4x6"), ("p:abc", None, "4x6"), ("browser:3x5", None, "4x6"), ("p:" + "9" * 40, None, "4x6"),
    ("<script>", None, "4x6"),
])
def test_remembered_printer_cookie(cookie: str | None, printer_id: int | None, stock: str) -> None:
    """Whatever the cookie holds, it reads as a printer id or a browser size, never an error."""
    remembered = parse_remembered(cookie)
    assert (remembered.printer_id, remembered.browser_stock) == (printer_id, stock)


def test_parse_choice_and_numbers() -> None:
    """Picker choices and numbers are validated with clear messages."""
    assert parse_choice("p:3") == "p:3" and parse_choice("browser:a4") == "browser:a4"
    for bad in ("", "p:", "browser:9x9", "x:1", None):
        with pytest.raises(ValidationFailed):
            parse_choice(bad)
    assert parse_int("24", "Position", high=24) == 24
    for bad in ("0", "25", "-1", "1e3", "", None, "9" * 30):
        with pytest.raises(ValidationFailed):
            parse_int(bad, "Position", high=24)


@pytest.mark.parametrize(("target", "expected"), [
    ("/receiving/scan?x=1", "/receiving/scan?x=1"), ("//evil.example/x", None), ("https://evil.example/", None),
    ("/\\evil", None), ("", None), (None, None), ("relative", None),
])
def test_safe_next(target: str | None, expected: str | None) -> None:
    """Only same-site paths are followed back."""
    assert safe_next(target) == expected


def test_path_of() -> None:
    """htmx's HX-Current-URL becomes a path."""
    assert path_of("http://127.0.0.1:5000/receiving/unit/3?a=b") == "/receiving/unit/3?a=b"
    assert path_of(None) is None
