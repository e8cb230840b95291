"""Scanning on every device, in Chromium at Pixel 5 size (issue 18): the camera button only where a
decoder exists, the vendored ZXing polyfill standing in for a missing `BarcodeDetector` and decoding
a real barcode image, the soft keyboard kept shut for a wedge scanner until asked for."""
from __future__ import annotations

import base64
import io
from pathlib import Path

import pytest
from barcode import EAN13
from barcode.writer import ImageWriter

from PIL import Image

from app.labels.barcodes import code128_png
from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS, _refusing_csp_violations, receive_one, shoot, sign_in

pytestmark = pytest.mark.e2e

# Chromium has BarcodeDetector on Android and macOS only; deleting it before any script runs makes
# this page what Firefox, iOS Safari or desktop Chrome on Linux and Windows see.
NO_NATIVE_DETECTOR = "delete window.BarcodeDetector;"


def _scan_screen(page, base: str) -> None:  # type: ignore[no-untyped-def]
    sign_in(page, base, "worker")
    page.goto(f"{base}/receive")
    page.wait_for_selector("#scan")


def _ean13_png_data_url(digits: str) -> str:
    """A real EAN-13 barcode image drawn by python-barcode, as a data: URL."""
    out = io.BytesIO()
    EAN13(digits, writer=ImageWriter()).write(out, options={"module_width": 0.4, "module_height": 20, "dpi": 200})
    return "data:image/png;base64," + base64.b64encode(out.getvalue()).decode()


_DECODE = """async (src) => {
  const img = new Image(); img.src = src; await img.decode();
  const codes = await new BarcodeDetector({formats: ['ean_13', 'code_128']}).detect(img);
  return codes.map(c => [c.format, c.rawValue]);
}"""


def test_without_a_native_detector_the_polyfill_loads_shows_the_camera_and_decodes(live_server, e2e_world, handheld):
    page = handheld.new_page()
    page.add_init_script(NO_NATIVE_DETECTOR)
    wasm = []
    page.on("response", lambda r: wasm.append((r.status, r.headers.get("content-type"))) if r.url.endswith(".wasm") else None)
    _scan_screen(page, live_server)
    page.wait_for_selector("#camera-btn", state="visible")
    assert page.evaluate("typeof window.BarcodeDetector") == "function"
    assert page.evaluate("typeof window.BarcodeDetectionAPI.prepareZXingModule") == "function"  # ours, not native
    box = page.locator("#camera-btn").bounding_box()
    assert box and box["width"] >= 44 and box["height"] >= 44, box
    assert page.evaluate(_DECODE, _ean13_png_data_url("5901234123457")) == [["ean_13", "5901234123457"]]
    # the decoder's WebAssembly came from Dockhand's static files (no CDN), as WebAssembly
    assert wasm and wasm[0][0] == 200 and wasm[0][1] == "application/wasm", wasm
    shoot(page, "scan-camera-polyfill")


def test_without_any_decoder_the_camera_button_stays_hidden(live_server, e2e_world, handheld):
    """No native detector and the polyfill unreachable: the button is not shown at all (before the
    fix `.btn{display:inline-flex}` overrode `hidden` and a dead button sat beside the scan box)."""
    page = handheld.new_page()
    page.add_init_script(NO_NATIVE_DETECTOR)
    page.route("**/vendor/barcode-detector/**", lambda route: route.abort())
    _scan_screen(page, live_server)
    page.wait_for_load_state("networkidle")
    assert page.evaluate("typeof window.BarcodeDetector") == "undefined"
    assert page.evaluate("getComputedStyle(document.getElementById('camera-btn')).display") == "none"
    assert not page.locator("#camera-btn").is_visible()


def _keyboard(page) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    return (page.get_attribute("#scan", "inputmode") or "", page.get_attribute("#keyboard-btn", "aria-pressed") or "")


def test_the_soft_keyboard_stays_shut_for_a_wedge_scanner_until_asked_for(live_server, e2e_world, handheld):
    page = handheld.new_page()
    _scan_screen(page, live_server)
    assert _keyboard(page) == ("none", "false")  # a wedge scanner's keystrokes open no keyboard
    box = page.locator("#keyboard-btn").bounding_box()
    assert box and box["width"] >= 44 and box["height"] >= 44, box
    page.tap("#keyboard-btn")
    assert _keyboard(page) == ("text", "true")
    assert page.evaluate("document.activeElement.id") == "scan"  # typing goes straight into the box
    shoot(page, "scan-keyboard-on")
    page.reload()
    page.wait_for_selector("#scan")
    assert _keyboard(page) == ("text", "true")  # remembered on the device
    page.tap("#keyboard-btn")
    page.reload()
    page.wait_for_selector("#scan")
    assert _keyboard(page) == ("none", "false")


def _y4m_of_label(lpn: str, path: Path, frames: int = 5) -> None:
    """A camera's view of the LPN label as the app prints its barcode (code128_png, 3 px modules),
    as a raw YUV4MPEG2 video, the format Chromium's fake camera plays (in a loop)."""
    label = Image.open(io.BytesIO(code128_png(lpn, dpi=230)))
    width, height = 640, 360
    frame = Image.new("L", (width, height), 255)
    assert label.width <= width - 40, label.size
    frame.paste(label, ((width - label.width) // 2, (height - label.height) // 2))
    chroma = bytes([128]) * (width // 2 * height // 2)  # grey: no colour
    with path.open("wb") as out:
        out.write(f"YUV4MPEG2 W{width} H{height} F10:1 Ip A1:1 C420jpeg\n".encode())
        for _ in range(frames):
            out.write(b"FRAME\n" + frame.tobytes() + chroma + chroma)


@pytest.fixture
def camera_video(tmp_path: Path) -> Path:
    return tmp_path / "camera.y4m"


@pytest.fixture
def phone_with_camera(playwright_instance, camera_video: Path):  # type: ignore[no-untyped-def]
    """Chromium at Pixel 5 size with a fake back camera filming `camera_video` (written by the test
    before the camera opens), camera permission granted."""
    browser = playwright_instance.chromium.launch(
        executable_path=CHROMIUM, headless=True,
        args=[*CHROMIUM_ARGS, "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
              f"--use-file-for-fake-video-capture={camera_video}"])
    try:
        yield from _refusing_csp_violations(browser.new_context(
            **playwright_instance.devices["Pixel 5"], permissions=["camera"]))
    finally:
        browser.close()


def test_the_camera_scans_a_printed_lpn_through_the_polyfill(live_server, e2e_world, phone_with_camera, camera_video):
    """No native BarcodeDetector: the camera button opens the (fake) camera filming the LPN label of
    the unit just received; the ZXing polyfill reads it and the scan opens that unit."""
    page = phone_with_camera.new_page()
    page.add_init_script(NO_NATIVE_DETECTOR)
    sign_in(page, live_server, "worker")
    page.goto(f"{live_server}/receive")
    page.click("text=WH1 · Main DC")
    page.wait_for_selector("text=Scan a parcel label")
    receive_one(page, e2e_world.tracking.tracking_number, "036000291452")
    lpn = page.inner_text(".result .lpn").strip()
    _y4m_of_label(lpn, camera_video)
    page.wait_for_selector("#camera-btn", state="visible")
    assert page.evaluate("typeof window.BarcodeDetectionAPI") == "object"  # the polyfill, not Chromium's own
    page.tap("#camera-btn")
    page.wait_for_url("**/receive/units/*", timeout=20000)
    assert lpn in page.inner_text("main")
    assert not page.evaluate("document.getElementById('camera-dialog').open")  # the camera closed after the read
    shoot(page, "scan-camera-lpn-read")
