"""Code128 rendering: python-barcode encodes, then SVG (print page) or PNG (Pillow) is drawn."""

from __future__ import annotations

import io
from xml.sax.saxutils import quoteattr

from barcode import Code128
from PIL import Image, ImageDraw

from app.labels.domain import validate_barcode_value

QUIET_ZONE_MODULES = 10  # ISO/IEC 15417 minimum quiet zone on each side


def code128_modules(value: str) -> str:
    """Return the Code128 symbol for ``value`` as a string of '1' (bar) / '0' (space) modules."""
    validate_barcode_value(value)
    return Code128(value).build()[0]


def code128_width_modules(value: str, quiet_zone: int = QUIET_ZONE_MODULES) -> int:
    """Total width of the symbol in modules, including both quiet zones."""
    return len(code128_modules(value)) + 2 * quiet_zone


def _bar_runs(modules: str) -> list[tuple[int, int]]:
    """Return (start, width) of every run of consecutive bar modules."""
    runs: list[tuple[int, int]] = []
    start = None
    for index, module in enumerate(modules + "0"):
        if module == "1" and start is None:
            start = index
        elif module != "1" and start is not None:
            runs.append((start, index - start))
            start = None
    return runs


def code128_svg(value: str, height_modules: int = 40) -> str:
    """Inline SVG markup (no XML declaration) for ``value``, scaling to its container width.

    Coordinates are in modules; the viewBox includes a 10-module quiet zone each side and
    ``preserveAspectRatio="none"`` lets CSS set any height without narrowing the bars.
    The human-readable text is not drawn; the page prints it itself.
    """
    modules = code128_modules(value)
    width = len(modules) + 2 * QUIET_ZONE_MODULES
    bars = "".join(
        f'<rect x="{start + QUIET_ZONE_MODULES}" y="0" width="{run}" height="{height_modules}"/>'
        for start, run in _bar_runs(modules)
    )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="barcode" '
        f'viewBox="0 0 {width} {height_modules}" width="100%" preserveAspectRatio="none" '
        f'shape-rendering="crispEdges" role="img" '
        f"aria-label={quoteattr('Barcode ' + value)}>"
        f'<rect x="0" y="0" width="{width}" height="{height_modules}" fill="#fff"/>'
        f'<g fill="#000">{bars}</g></svg>'
    )


def code128_png(
    value: str, module_width_mm: float = 0.33, height_mm: float = 15.0, dpi: int = 300
) -> bytes:
    """Render ``value`` as a grayscale PNG with quiet zones and no text under the bars.

    The module width is rounded to whole pixels at ``dpi`` so every bar has an exact width.
    (python-barcode's ImageWriter converts mm to px in floating point, which yields uneven
    bars and fails outright for 1-px modules, so the module sequence is drawn here.)
    """
    modules = code128_modules(value)
    if module_width_mm <= 0 or height_mm <= 0 or dpi <= 0:
        raise ValueError("module_width_mm, height_mm and dpi must be positive")
    module_px = max(1, round(module_width_mm * dpi / 25.4))
    height_px = max(1, round(height_mm * dpi / 25.4))
    margin = 2 * module_px
    width_px = (len(modules) + 2 * QUIET_ZONE_MODULES) * module_px
    image = Image.new("L", (width_px, height_px + 2 * margin), 255)
    draw = ImageDraw.Draw(image)
    for start, run in _bar_runs(modules):
        x0 = (start + QUIET_ZONE_MODULES) * module_px
        draw.rectangle([x0, margin, x0 + run * module_px - 1, margin + height_px - 1], fill=0)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", dpi=(dpi, dpi))
    return buffer.getvalue()
