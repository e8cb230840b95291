"""ZPL II rendering of labels for Zebra thermal printers (203 dpi, 4x6 and 2x1 stock).

All text goes through ``^FH`` hex escaping so that hostile data can never inject commands:
``^``, ``~``, ``_`` (the hex indicator) and ``\\`` are sent as ``_5E``, ``_7E``, ``_5F``,
``_5C``; control characters and line breaks are flattened to spaces first.
"""

from __future__ import annotations

from collections.abc import Iterable

from app.labels.barcodes import QUIET_ZONE_MODULES, code128_width_modules
from app.labels.domain import LabelContent, clean_text, get_stock, truncate_name, wrap_text

_ESCAPED = {"^": "_5E", "~": "_7E", "_": "_5F", "\\": "_5C"}
_CHAR_WIDTH = 0.62  # average glyph advance of font 0, as a fraction of the font width
_ELLIPSIS = "..."


def zpl_escape(text: str) -> str:
    """Clean ``text`` and hex-escape it for an ``^FH^FD...^FS`` field."""
    return "".join(_ESCAPED.get(ch, ch) for ch in clean_text(text))


def _chars_that_fit(width_dots: int, font: int) -> int:
    """Roughly how many characters of font 0 at size ``font`` fit in ``width_dots``."""
    return max(1, int(width_dots / (font * _CHAR_WIDTH)))


def _text(x: int, y: int, font: int, text: str) -> str:
    """A font-0 text field at (x, y) with escaped data."""
    return f"^FO{x},{y}^A0N,{font},{font}^FH^FD{zpl_escape(text)}^FS"


def _fitted(x: int, y: int, font: int, width: int, text: str) -> str:
    """A text field truncated so that it fits ``width`` dots at ``font``."""
    return _text(x, y, font, truncate_name(text, _chars_that_fit(width, font), _ELLIPSIS))


def _big(x: int, y: int, max_font: int, min_font: int, width: int, text: str) -> str:
    """A text field shrunk (down to ``min_font``) rather than truncated to fit ``width``."""
    length = max(1, len(clean_text(text)))
    font = max(min_font, min(max_font, int(width / (length * _CHAR_WIDTH))))
    return _fitted(x, y, font, width, text)


def _barcode(value: str, y: int, height: int, label_width: int, max_module: int) -> str:
    """A centred Code128 field using the widest module (dots) that fits the label."""
    modules = code128_width_modules(value)
    module = next((m for m in range(max_module, 0, -1) if modules * m <= label_width), 0)
    if not module:
        raise ValueError(f"Barcode value {value!r} is too long for a {label_width}-dot label")
    x = (label_width - modules * module) // 2 + QUIET_ZONE_MODULES * module
    escaped = "".join(_ESCAPED.get(ch, ch) for ch in value)
    return f"^BY{module}^FO{x},{y}^BCN,{height},N,N,N,A^FH^FD{escaped}^FS"


def _body_4x6(c: LabelContent, width: int) -> list[str]:
    """Fields of the 4x6 in label (812 x 1218 dots)."""
    m, inner = 40, width - 80
    fields = [
        _fitted(m, 40, 34, inner - 220, c.warehouse),
        _text(width - m - 215, 40, 34, c.printed_on.isoformat()),
        f"^FO{m},90^GB{inner},3,3^FS",
        _barcode(c.barcode_value, 120, 220, width, 4),
    ]
    y = 360
    if c.barcode_value != c.lpn:
        fields.append(_fitted(m, y, 30, inner, c.barcode_value))
        y += 45
    fields.append(_big(m, y, 110, 50, inner, c.lpn))
    y += 130
    fields.append(_fitted(m, y, 50, inner, f"SKU {clean_text(c.sku)}"))
    y += 70
    for line in wrap_text(c.product_name, _chars_that_fit(inner, 44), 2, _ELLIPSIS):
        fields.append(_text(m, y, 44, line))
        y += 54
    y = max(y, 700) + 10
    fields.append(f"^FO{m},{y}^GB{inner},3,3^FS")
    y += 30
    for caption, value in (("Grade", c.grade), ("Disposition", c.disposition),
                           ("Location", c.location)):
        if clean_text(value):
            fields.append(_fitted(m, y, 50, inner, f"{caption}: {clean_text(value)}"))
            y += 75
    return fields


def _body_2x1(c: LabelContent, width: int) -> list[str]:
    """Fields of the 2x1 in label (406 x 203 dots): barcode, LPN, SKU and grade only."""
    m, inner = 16, width - 32
    fields = [
        _barcode(c.barcode_value, 12, 90, width, 2),
        _big(m, 112, 44, 26, inner, c.lpn),
    ]
    grade = clean_text(c.grade)
    sku_width = inner - (130 if grade else 0)
    fields.append(_fitted(m, 164, 28, sku_width, clean_text(c.sku)))
    if grade:
        fields.append(_fitted(width - m - 120, 164, 28, 120, f"Gr {grade}"))
    return fields


def render_zpl(content: LabelContent, stock: str) -> str:
    """Render one ZPL II label (``^XA`` ... ``^XZ``) for a thermal ``stock`` ("4x6" or "2x1")."""
    spec = get_stock(stock)
    if stock == "4x6":
        body = _body_4x6(content, spec.width_dots or 0)
    elif stock == "2x1":
        body = _body_2x1(content, spec.width_dots or 0)
    else:
        raise ValueError(f"Stock {stock!r} cannot be printed as ZPL; use 4x6 or 2x1")
    head = ["^XA", "^CI28", f"^PW{spec.width_dots}", f"^LL{spec.height_dots}", "^LH0,0"]
    return "\n".join(head + body + ["^XZ"])


def render_zpl_many(contents: Iterable[LabelContent], stock: str) -> str:
    """Render several labels, one ``^XA`` ... ``^XZ`` block each, joined by newlines."""
    return "\n".join(render_zpl(content, stock) for content in contents)
