"""The handheld in Spanish, in Chromium at 360x640 with a Spanish browser (issue 18): signing in,
picking the warehouse, opening a parcel, receiving an item, the queue and the start page, each
screenshot, with no English of the catalogue left on any of them; then the person picks English in
the header and the next page speaks it, whatever the browser says."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

from tests.e2e.conftest import _refusing_csp_violations, receive_one, shoot, sign_in, too_small

pytestmark = pytest.mark.e2e

CATALOGUE = Path(__file__).resolve().parents[2] / "translations" / "es" / "LC_MESSAGES" / "messages.po"


def _english_phrases() -> list[str]:
    """The catalogue's English phrases that Spanish says differently (fixed text, two words or more)."""
    phrases = []
    for entry in read_po(CATALOGUE.open("rb"), locale="es"):
        ids = entry.id if isinstance(entry.id, tuple) else (entry.id,)
        strings = entry.string if isinstance(entry.string, tuple) else (entry.string,)
        for msgid in ids:
            for part in re.split(r"%\(\w+\)s|\{\w+\}", msgid):
                part = part.strip(" .:·,()")
                if len(part.split()) >= 2 and part not in strings:
                    phrases.append(part)
    return phrases


@pytest.fixture
def spanish_phone(browser, playwright_instance):  # type: ignore[no-untyped-def]
    device = dict(playwright_instance.devices["Pixel 5"])
    device["viewport"] = {"width": 360, "height": 640}
    yield from _refusing_csp_violations(browser.new_context(**device, locale="es-ES"))


def _english_on(page) -> list[str]:  # type: ignore[no-untyped-def]
    text = page.evaluate("document.body.innerText + ' ' + Array.from(document.querySelectorAll("
                         "'[aria-label],[placeholder],[title]')).map(e => [e.getAttribute('aria-label'), "
                         "e.getAttribute('placeholder'), e.getAttribute('title')].join(' ')).join(' ')")
    return sorted({p for p in PHRASES if p in text})


PHRASES = _english_phrases()


def test_the_handheld_speaks_spanish_at_360_px(live_server, e2e_world, spanish_phone):
    assert len(PHRASES) > 100  # the check has the catalogue to look for
    page = spanish_phone.new_page()
    page.on("dialog", lambda d: d.accept())
    page.goto(f"{live_server}/login")
    assert page.inner_text("h1") == "Iniciar sesión"
    shoot(page, "es-360-signin")
    assert _english_on(page) == []
    sign_in(page, live_server, "worker")
    page.wait_for_selector("text=¿Dónde trabajas?")
    assert _english_on(page) == []
    page.click("text=WH1 · Main DC")
    page.wait_for_selector("text=Escanea la etiqueta de un paquete")
    receive_one(page, e2e_world.tracking.tracking_number, "036000291452")
    page.wait_for_load_state("networkidle")
    assert "Recibido" in page.inner_text("#result")
    assert "1 de 3 unidades esperadas recibidas" in page.inner_text("#parcel-progress")
    shoot(page, "es-360-scan-received")
    assert _english_on(page) == [] and too_small(page) == []
    page.goto(f"{live_server}/receive/queue")
    page.wait_for_selector("text=Cola de inspección")
    assert "unidad espera inspección aquí" in page.inner_text("#queue-total")
    shoot(page, "es-360-queue")
    assert _english_on(page) == []
    page.goto(f"{live_server}/")
    page.wait_for_selector("text=Mi trabajo de hoy en WH1")
    shoot(page, "es-360-home")
    assert _english_on(page) == []
    # The person's own choice in the header wins over the browser's Spanish.
    page.click("details.lang summary")
    page.click("details.lang button[value=en]")
    page.wait_for_selector("text=My work today at WH1")
    assert page.get_attribute("html", "lang") == "en"


def test_the_desk_speaks_spanish_at_desktop_size(live_server, e2e_world, browser):  # type: ignore[no-untyped-def]
    ctx = browser.new_context(viewport={"width": 1366, "height": 900}, locale="es-ES")
    page = ctx.new_page()
    sign_in(page, live_server, "super")
    page.goto(f"{live_server}/desk")
    page.wait_for_selector("h1:has-text('Mesa del supervisor')")
    shoot(page, "es-desk-1366-index")
    assert _english_on(page) == []
    page.goto(f"{live_server}/desk/quarantine")
    page.wait_for_selector("h1:has-text('Cuarentena')")
    shoot(page, "es-desk-1366-quarantine")
    assert _english_on(page) == []
    page.goto(f"{live_server}/desk/search?q=zzz")
    page.wait_for_selector("text=Nada encontrado para")
    assert _english_on(page) == []
    ctx.close()
