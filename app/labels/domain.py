"""Label content, label stocks and text helpers shared by the print page and ZPL."""

from __future__ import annotations

import re
import textwrap
import unicodedata
from dataclasses import dataclass
from datetime import date
from app.words import N_

LABEL_KINDS = ("lpn", "sku")
MAX_BARCODE_LENGTH = 80
_WHITESPACE_RUN = re.compile(r"\s+")


@dataclass(frozen=True)
class LabelContent:
    """Everything printed on one label; ``barcode_value`` is what the barcode encodes."""

    lpn: str
    sku: str
    product_name: str
    grade: str | None
    disposition: str | None
    location: str | None
    warehouse: str
    printed_on: date
    barcode_value: str
    kind: str = "lpn"

    def __post_init__(self) -> None:
        """Reject unknown label kinds and values a Code128 symbol cannot carry."""
        if self.kind not in LABEL_KINDS:
            raise ValueError(f"Unknown label kind {self.kind!r}; expected one of {LABEL_KINDS}")
        validate_barcode_value(self.barcode_value)


@dataclass(frozen=True)
class LabelStock:
    """A label stock: thermal roll (with ZPL dots) or a sheet of labels (with a grid)."""

    key: str
    title: str
    width_mm: float
    height_mm: float
    dpi: int | None = None
    width_dots: int | None = None
    height_dots: int | None = None
    columns: int = 1
    rows: int = 1
    cell_width_mm: float | None = None
    cell_height_mm: float | None = None
    margin_top_mm: float = 0.0
    margin_left_mm: float = 0.0

    @property
    def is_thermal(self) -> bool:
        """True when the stock can be printed as ZPL on a thermal printer."""
        return self.width_dots is not None

    @property
    def labels_per_page(self) -> int:
        """How many labels one page (or one thermal label) holds."""
        return self.columns * self.rows



STOCKS: dict[str, LabelStock] = {
    "4x6": LabelStock(
        key="4x6", title=N_("4 x 6 in thermal"), width_mm=101.6, height_mm=152.4,
        dpi=203, width_dots=812, height_dots=1218,
    ),
    "2x1": LabelStock(
        key="2x1", title=N_("2 x 1 in thermal"), width_mm=50.8, height_mm=25.4,
        dpi=203, width_dots=406, height_dots=203,
    ),
    "a4": LabelStock(
        key="a4", title=N_("A4 sheet, 3 x 8 labels of 70 x 37 mm"), width_mm=210.0,
        height_mm=297.0, columns=3, rows=8, cell_width_mm=70.0, cell_height_mm=37.0,
        margin_top_mm=0.5, margin_left_mm=0.0,
    ),
}
THERMAL_STOCKS = tuple(key for key, stock in STOCKS.items() if stock.is_thermal)


def get_stock(key: str) -> LabelStock:
    """Return the stock called ``key`` or raise ``ValueError`` naming the valid keys."""
    try:
        return STOCKS[key]
    except KeyError:
        known = ", ".join(STOCKS)
        raise ValueError(f"Unknown label stock {key!r}; expected one of {known}") from None


def validate_barcode_value(value: str) -> str:
    """Return ``value`` if Code128 can encode it (1-80 printable ASCII chars), else raise."""
    if not isinstance(value, str) or not value:
        raise ValueError("Barcode value must be a non-empty string")
    if len(value) > MAX_BARCODE_LENGTH:
        raise ValueError(f"Barcode value is longer than {MAX_BARCODE_LENGTH} characters")
    if any(not " " <= ch <= "~" for ch in value):
        raise ValueError("Barcode value may only contain printable ASCII characters")
    return value


def clean_text(text: str | None) -> str:
    """Make free text single-line: control/separator chars become spaces, runs collapse."""
    if not text:
        return ""
    chars = []
    for ch in text:
        category = unicodedata.category(ch)
        if category == "Cs":  # lone surrogates cannot be encoded at all
            continue
        chars.append(" " if category in ("Cc", "Zl", "Zp") else ch)
    return _WHITESPACE_RUN.sub(" ", "".join(chars)).strip()


def truncate_name(name: str | None, max_chars: int, ellipsis: str = "…") -> str:
    """Clean ``name`` and cut it to at most ``max_chars`` characters, ending in ``ellipsis``."""
    if max_chars < 1:
        raise ValueError("max_chars must be at least 1")
    text = clean_text(name)
    if len(text) <= max_chars:
        return text
    if max_chars <= len(ellipsis):
        return text[:max_chars]
    return text[: max_chars - len(ellipsis)].rstrip() + ellipsis


def short_name(name: str | None, max_chars: int = 22, ellipsis: str = "…") -> str:
    """Short product name for small labels (the 2x1 stock)."""
    return truncate_name(name, max_chars, ellipsis)


def wrap_text(text: str | None, width: int, max_lines: int, ellipsis: str = "…") -> list[str]:
    """Word-wrap cleaned ``text`` into at most ``max_lines`` lines of ``width`` characters."""
    cleaned = clean_text(text)
    if not cleaned:
        return []
    if width < 1 or max_lines < 1:
        raise ValueError("width and max_lines must be at least 1")
    lines = textwrap.wrap(cleaned, width=width)
    if len(lines) > max_lines:
        lines = lines[:max_lines]
        room = max(0, width - len(ellipsis))
        lines[-1] = (lines[-1][:room].rstrip() + ellipsis)[:width]
    return lines


# --- relabels and reprints ---------------------------------------------------------------

REPRINT_REASONS = (
    N_("Label damaged or unreadable"),
    N_("Label lost or fell off"),
    N_("Printer jam or misprint"),
    N_("Wrong label size"),
    N_("Item re-bagged or re-boxed"),
    N_("Other"),
)
MAX_REASON_LENGTH = 200
_DIGITS = re.compile(r"^[0-9]+$")


def display_gtin(code: str) -> str:
    """The form a normalised GTIN-14 is printed in: GTIN-8, UPC-A (12), EAN-13 or GTIN-14.

    Product barcodes are stored as GTIN-14 (left-padded with zeros); a label carries the
    shortest standard form: six leading zeros mean a GTIN-8, two a UPC-A, one an EAN-13.
    Anything that is not a 14-digit number (a SKU-like alias) is returned unchanged.
    """
    code = code.strip()
    if len(code) != 14 or not _DIGITS.match(code):
        return code
    if code.startswith("000000"):
        return code[6:]
    if code.startswith("00"):
        return code[2:]
    if code.startswith("0"):
        return code[1:]
    return code


def sells_as_open_box(grade: str | None, packaging: str | None) -> bool:
    """True when an inspected unit is no longer sold as new: any grade below A, or opened packaging.

    An uninspected unit (no grade yet) still sells as what it was bought as.
    """
    if not grade:
        return False
    return grade != "A" or (packaging or "sealed") != "sealed"


def humanise(value: str | None) -> str:
    """A code such as ``return_to_vendor`` as words for a label: ``return to vendor``."""
    return clean_text((value or "").replace("_", " "))
