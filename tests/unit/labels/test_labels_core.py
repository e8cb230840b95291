"""Pure tests of the label core: Code128 round trips, ZPL safety, raw printer sockets."""

from __future__ import annotations

import io
import re
import socket
import threading
import time
import xml.etree.ElementTree as ET
from dataclasses import replace
from datetime import date

import pytest
import zxingcpp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageDraw

from app.labels.barcodes import code128_png, code128_svg
from app.labels.domain import (
    STOCKS,
    LabelContent,
    clean_text,
    short_name,
    truncate_name,
    wrap_text,
)
from app.labels.printer import UNREACHABLE, PrinterError, PrinterNetworks, send_raw
from app.labels.zpl import render_zpl, render_zpl_many, zpl_escape
from tests.fakes import PRINTER_HOST, PRINTER_NETWORKS, closed_port, unresponsive_port

SVG_NS = "{http://www.w3.org/2000/svg}"
LPNS = ["LP00000001", "LP123456789", "LP1234567890", "LP12345678901234"]
PRODUCT_BARCODES = ["4006381333931", "036000291452", "TSHIRT-BLU-M"]
ZPL_COMMANDS = {"XA", "CI", "PW", "LL", "LH", "FO", "A0", "FH", "FD", "FS", "GB", "BY", "BC", "XZ"}


def make_content(**changes: object) -> LabelContent:
    """A plausible LPN label, with any field overridden."""
    base = LabelContent(
        lpn="LP00001234", sku="TSHIRT-BLU-M", product_name="T-shirt blue, size M",
        grade="B", disposition="restock", location="A-01-02", warehouse="Leipzig DC",
        printed_on=date(2025, 3, 14), barcode_value="LP00001234", kind="lpn",
    )
    return replace(base, **changes)


def decode(image: Image.Image) -> list[tuple[str, zxingcpp.BarcodeFormat]]:
    """Decode every barcode in ``image`` as (text, format) pairs."""
    return [(r.text, r.format) for r in zxingcpp.read_barcodes(image)]


def rasterise_svg(svg: str, scale: int = 4) -> Image.Image:
    """Draw the rect-only barcode SVG with Pillow (no SVG renderer is installed)."""
    root = ET.fromstring(svg)
    _, _, width, height = (float(v) for v in root.get("viewBox", "").split())
    image = Image.new("L", (int(width * scale), int(height * scale)), 255)
    draw = ImageDraw.Draw(image)
    for group in root.iter(f"{SVG_NS}g"):
        for rect in group.iter(f"{SVG_NS}rect"):
            x, w = float(rect.get("x", 0)) * scale, float(rect.get("width", 0)) * scale
            draw.rectangle([x, 0, x + w - 1, image.height - 1], fill=0)
    return image


# --- barcodes ---------------------------------------------------------------------------


@pytest.mark.parametrize("value", LPNS + PRODUCT_BARCODES)
@pytest.mark.parametrize("module_width_mm", [0.125, 0.25, 0.33])
def test_png_round_trip(value: str, module_width_mm: float) -> None:
    """Every LPN length and product barcode decodes back to itself as Code128."""
    png = code128_png(value, module_width_mm=module_width_mm, height_mm=10, dpi=203)
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG"
    assert decode(image) == [(value, zxingcpp.BarcodeFormat.Code128)]


@pytest.mark.parametrize("value", LPNS + PRODUCT_BARCODES + ['a^~_\\<>&" x'])
def test_svg_is_embeddable_and_decodes(value: str) -> None:
    """The SVG is bare, scalable, text-free markup whose bars decode to the value."""
    svg = code128_svg(value)
    assert svg.startswith("<svg") and "<?xml" not in svg
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG_NS}svg" and root.get("width") == "100%" and root.get("viewBox")
    assert len(list(root.iter(f"{SVG_NS}rect"))) > 10
    assert not list(root.iter(f"{SVG_NS}text"))
    assert decode(rasterise_svg(svg)) == [(value, zxingcpp.BarcodeFormat.Code128)]


def test_svg_keeps_quiet_zones() -> None:
    """No bar starts within 10 modules of either edge of the viewBox."""
    root = ET.fromstring(code128_svg("LP00000001"))
    width = float(root.get("viewBox", "").split()[2])
    bars = [r for g in root.iter(f"{SVG_NS}g") for r in g.iter(f"{SVG_NS}rect")]
    assert min(float(r.get("x", 0)) for r in bars) >= 10
    assert max(float(r.get("x", 0)) + float(r.get("width", 0)) for r in bars) <= width - 10


@pytest.mark.parametrize("bad", ["", "LPü123", "LP\n1", "x" * 81])
def test_barcode_rejects_unencodable_values(bad: str) -> None:
    """Values Code128 cannot carry raise ValueError instead of printing garbage."""
    with pytest.raises(ValueError):
        code128_png(bad)
    with pytest.raises(ValueError):
        code128_svg(bad)


# --- domain -----------------------------------------------------------------------------


def test_text_helpers() -> None:
    """Names are flattened, truncated with an ellipsis and wrapped to a line budget."""
    assert clean_text(" a\r\n\tb\x00c\u2028 ") == "a b c"
    assert truncate_name("Wireless headphones", 10) == "Wireless…"
    assert truncate_name("Short", 10) == "Short"
    assert len(short_name("x" * 100)) == 22
    assert wrap_text("one two three four five", 9, 2, "...") == ["one two", "three..."]


def test_stocks_and_kinds() -> None:
    """Stock definitions match the physical stock and unknown kinds are rejected."""
    big = STOCKS["4x6"]
    assert (big.width_dots, big.height_dots, big.dpi) == (812, 1218, 203)
    assert (STOCKS["2x1"].width_dots, STOCKS["2x1"].height_dots) == (406, 203)
    assert STOCKS["a4"].labels_per_page == 24 and not STOCKS["a4"].is_thermal
    with pytest.raises(ValueError):
        make_content(kind="pallet")


# --- ZPL --------------------------------------------------------------------------------


@pytest.mark.parametrize(("stock", "width", "height"), [("4x6", 812, 1218), ("2x1", 406, 203)])
@pytest.mark.parametrize("lpn", LPNS)
def test_zpl_structure(stock: str, width: int, height: int, lpn: str) -> None:
    """One label per call, UTF-8, stock-sized, with a Code128 field carrying the LPN."""
    zpl = render_zpl(make_content(lpn=lpn, barcode_value=lpn), stock)
    assert zpl.startswith("^XA") and zpl.endswith("^XZ")
    assert zpl.count("^XA") == zpl.count("^XZ") == 1
    assert "^CI28" in zpl and f"^PW{width}" in zpl and f"^LL{height}" in zpl
    assert "^BC" in zpl and f"^FD{lpn}^FS" in zpl
    for x in map(int, re.findall(r"\^FO(\d+),", zpl)):
        assert 0 <= x < width


def test_zpl_4x6_shows_everything_2x1_only_the_essentials() -> None:
    """4x6 carries all fields; 2x1 only barcode, LPN, SKU and grade."""
    content = make_content()
    big, small = render_zpl(content, "4x6"), render_zpl(content, "2x1")
    for text in ("LP00001234", "TSHIRT-BLU-M", "T-shirt blue", "B", "restock", "A-01-02",
                 "Leipzig DC", "2025-03-14"):
        assert text in big
    for text in ("LP00001234", "TSHIRT-BLU-M", "Gr B"):
        assert text in small
    for text in ("restock", "A-01-02", "Leipzig DC", "T-shirt"):
        assert text not in small


def test_zpl_sku_relabel_encodes_product_barcode() -> None:
    """A SKU relabel puts the product barcode in ^BC and still prints the LPN."""
    zpl = render_zpl(make_content(kind="sku", barcode_value="4006381333931"), "4x6")
    assert re.search(r"\^BC[^\n]*\^FD4006381333931\^FS", zpl)
    assert "LP00001234" in zpl


def test_zpl_hostile_text_is_escaped() -> None:
    """Command prefixes in a product name are hex-escaped and the name is truncated."""
    name = "Evil ^XZ^XA~JR name\n" + "ü" * 300
    for stock in ("4x6", "2x1"):
        zpl = render_zpl(make_content(product_name=name, sku="~JR^XZ", grade="^XA"), stock)
        assert zpl.count("^XA") == 1 and zpl.count("^XZ") == 1
        assert "~" not in zpl and "~JR" not in zpl
        assert zpl.startswith("^XA") and zpl.endswith("^XZ")
    zpl = render_zpl(make_content(product_name=name), "4x6")
    assert "Evil _5EXZ_5EXA_7EJR name" in zpl
    assert zpl.count("ü") < 80


def test_zpl_hostile_barcode_value_is_escaped() -> None:
    """Even barcode data with ^, ~ and _ cannot break out of its field."""
    zpl = render_zpl(make_content(barcode_value="A^XZ~JR_1"), "4x6")
    assert "^FDA_5EXZ_7EJR_5F1^FS" in zpl
    assert zpl.count("^XZ") == 1 and "~" not in zpl


def test_zpl_escape_round_trips() -> None:
    """Decoding the ^FH escapes gives back the cleaned text."""
    text = "a^b~c_d\\e ü\n"
    escaped = zpl_escape(text)
    assert re.sub(r"_([0-9A-F]{2})", lambda m: chr(int(m.group(1), 16)), escaped) == "a^b~c_d\\e ü"


def test_zpl_rejects_sheet_and_unknown_stock() -> None:
    """Only thermal stock has a ZPL rendering."""
    for stock in ("a4", "3x5"):
        with pytest.raises(ValueError):
            render_zpl(make_content(), stock)


def test_render_zpl_many() -> None:
    """One ^XA ... ^XZ block per label, in order."""
    contents = [make_content(lpn=lpn, barcode_value=lpn) for lpn in LPNS]
    zpl = render_zpl_many(contents, "2x1")
    assert zpl.count("^XA") == zpl.count("^XZ") == len(LPNS)
    assert [m for m in re.findall(r"\^FD(LP\d+)\^FS", zpl)][::2] == LPNS
    assert render_zpl_many([], "4x6") == ""


optional_text = st.none() | st.text()


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(
    lpn=st.text(), sku=st.text(), product_name=st.text(), grade=optional_text,
    disposition=optional_text, location=optional_text, warehouse=st.text(),
    barcode_value=st.text(st.characters(min_codepoint=32, max_codepoint=126), min_size=1,
                          max_size=16),
    kind=st.sampled_from(["lpn", "sku"]), stock=st.sampled_from(["4x6", "2x1"]),
)
def test_zpl_property_no_injection(stock: str, **fields: object) -> None:
    """Arbitrary text never adds commands: one ^XA first, one ^XZ last, no raw ~ at all."""
    content = LabelContent(printed_on=date(2025, 1, 1), **fields)  # type: ignore[arg-type]
    zpl = render_zpl(content, stock)
    assert zpl.startswith("^XA") and zpl.endswith("^XZ")
    assert zpl.count("^XA") == 1 and zpl.count("^XZ") == 1
    assert "~" not in zpl
    assert set(re.findall(r"\^(..)", zpl)) <= ZPL_COMMANDS
    assert all(line.startswith("^") for line in zpl.split("\n"))
    assert not any(ord(ch) < 32 or ord(ch) == 127 for ch in zpl.replace("\n", ""))
    zpl.encode("utf-8")


# --- printer ----------------------------------------------------------------------------


def test_send_raw_delivers_exact_bytes() -> None:
    """A fake printer on this machine's own address receives the whole payload, byte for byte, then EOF."""
    payload = render_zpl(make_content(), "4x6").encode() + bytes(range(256)) * 8000
    received = bytearray()
    with socket.create_server((PRINTER_HOST, 0), family=socket.AF_INET6 if ":" in PRINTER_HOST else socket.AF_INET) as server:
        server.settimeout(5)

        def serve() -> None:
            """Accept one connection and read it to EOF."""
            conn, _ = server.accept()
            with conn:
                conn.settimeout(5)
                while chunk := conn.recv(65536):
                    received.extend(chunk)

        thread = threading.Thread(target=serve)
        thread.start()
        send_raw(PRINTER_HOST, server.getsockname()[1], payload, timeout=5, networks=PRINTER_NETWORKS)
        thread.join(5)
    assert not thread.is_alive()
    assert bytes(received) == payload


def test_send_raw_says_the_same_for_refused_silent_unknown_and_not_allowed() -> None:
    """One text for every failure, so that setting up printers is no port scanner; a closed port
    fails fast, a printer that never reads within the timeout."""
    messages = {}
    started = time.monotonic()
    with pytest.raises(PrinterError) as info:
        send_raw(PRINTER_HOST, closed_port(), b"^XA^XZ", timeout=2, networks=PRINTER_NETWORKS)
    assert time.monotonic() - started < 2
    messages["refused"] = info.value.message
    with unresponsive_port() as port, pytest.raises(PrinterError) as info:
        send_raw(PRINTER_HOST, port, b"\0" * 20_000_000, timeout=0.5, networks=PRINTER_NETWORKS)
    messages["silent"] = info.value.message
    with socket.create_server(("127.0.0.1", 0)) as local:  # a service on this host's loopback
        local.settimeout(0.5)
        for name, host in (("unknown", "printer.invalid"), ("loopback", "127.0.0.1"), ("metadata", "169.254.169.254"),
                           ("public", "8.8.8.8")):
            with pytest.raises(PrinterError) as info:
                send_raw(host, local.getsockname()[1], b"^XA^XZ", timeout=0.5, networks=PRINTER_NETWORKS)
            messages[name] = info.value.message
        with pytest.raises(TimeoutError):
            local.accept()  # nothing ever connected to it
    assert set(messages.values()) == {UNREACHABLE}, messages


@pytest.mark.parametrize(("address", "allowed"), [
    ("10.1.2.3", True), ("172.16.0.9", True), ("192.168.4.20", True), ("fd12::7", True),
    ("127.0.0.1", False), ("127.8.9.1", False), ("::1", False), ("169.254.169.254", False), ("fe80::1", False),
    ("::ffff:127.0.0.1", False), ("::ffff:10.0.0.1", True), ("0.0.0.0", False), ("224.0.0.1", False),
    ("8.8.8.8", False), ("192.0.2.10", False), ("not an address", False)])
def test_printer_networks_default_to_the_private_lan_and_never_allow_this_host(address: str, allowed: bool) -> None:
    assert PrinterNetworks.default().permits(address) is allowed
    # Even an admin who allows everything cannot send to loopback, link-local or multicast.
    assert PrinterNetworks.parse("0.0.0.0/0,::/0").permits(address) is (allowed or address in ("8.8.8.8", "192.0.2.10"))


def test_a_bad_printer_network_setting_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="'10.0.0.0/33' is not a network range"):
        PrinterNetworks.parse("192.168.0.0/16, 10.0.0.0/33")


@pytest.mark.parametrize(
    ("host", "port", "timeout"),
    [("", 9100, 5), ("bad host", 9100, 5), ("10.0.0.1\n", 9100, 5), (None, 9100, 5),
     ("127.0.0.1", 0, 5), ("127.0.0.1", 65536, 5), ("127.0.0.1", "9100", 5),
     ("127.0.0.1", True, 5), ("127.0.0.1", 9100, 0)],
)
def test_send_raw_validates_arguments(host: object, port: object, timeout: object) -> None:
    """Bad host, port or timeout raise PrinterError before any connection is tried."""
    with pytest.raises(PrinterError):
        send_raw(host, port, b"^XA^XZ", timeout=timeout, networks=PRINTER_NETWORKS)  # type: ignore[arg-type]
