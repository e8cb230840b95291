"""The language a person's screens speak, through the Flask client on both databases: the browser's
Accept-Language, the person's own choice in the header (kept on their profile, winning over the
browser), a bad choice refused with nothing changed, and Spanish numbers and money."""
from __future__ import annotations

from decimal import Decimal

from sqlalchemy import select

from app.auth.models import User
from app.web.i18n import money, number
from tests.conftest import login

SPANISH = {"Accept-Language": "es-MX,es;q=0.9,en;q=0.5"}
ENGLISH = {"Accept-Language": "en-US,en;q=0.9"}


def _locale(session, username: str) -> str | None:
    session.rollback()  # a fresh read: SQLite would keep the snapshot of the open transaction
    return session.scalar(select(User.locale).where(User.username == username))


def test_the_browser_language_is_spoken_until_the_person_chooses(client, world):
    login(client, "worker")
    spanish = client.get("/receive", headers=SPANISH).get_data(as_text=True)
    assert '<html lang="es">' in spanish
    assert "¿Dónde trabajas?" in spanish and "Cerrar sesión" in spanish and "operario" in spanish
    assert "Where are you working?" not in spanish and "Sign out" not in spanish
    english = client.get("/receive", headers=ENGLISH).get_data(as_text=True)
    assert '<html lang="en">' in english and "Where are you working?" in english
    # A language we do not have falls back to English.
    assert "Where are you working?" in client.get("/receive", headers={"Accept-Language": "de"}).get_data(as_text=True)


def test_the_persons_choice_wins_over_the_browser_and_is_kept(client, world, session):
    login(client, "worker")
    resp = client.post("/language", data={"language": "es", "next": "/receive/queue"}, headers=ENGLISH)
    assert resp.status_code == 303 and resp.headers["Location"].endswith("/receive/queue")
    assert _locale(session, "worker") == "es"
    page = client.get("/receive/queue", headers=ENGLISH).get_data(as_text=True)
    assert "Cola de inspección" in page and "Inspection queue" not in page
    # The answer was lost and the tap is sent again: the same choice, nothing else.
    assert client.post("/language", data={"language": "es"}, headers=ENGLISH).status_code == 303
    assert _locale(session, "worker") == "es"
    # Kept on the profile: a new sign-in on another device speaks Spanish at once.
    other = client.application.test_client()
    login(other, "worker")
    assert "¿Dónde trabajas?" in other.get("/receive", headers=ENGLISH).get_data(as_text=True)
    # "As my browser" clears it.
    assert client.post("/language", data={"language": ""}, headers=ENGLISH).status_code == 303
    assert _locale(session, "worker") is None
    assert "Where are you working?" in client.get("/receive", headers=ENGLISH).get_data(as_text=True)


def test_a_language_we_do_not_have_is_refused_and_changes_nothing(client, world, session):
    login(client, "worker")
    client.post("/language", data={"language": "es"})
    resp = client.post("/language", data={"language": "xx\x01" * 50}, follow_redirects=True, headers=ENGLISH)
    assert resp.status_code == 200
    assert "Elige un idioma de la lista (English, Español)" in resp.get_data(as_text=True)  # said in Spanish, chosen before
    assert _locale(session, "worker") == "es"


def test_the_header_offers_each_language_and_marks_the_chosen_one(client, world):
    login(client, "super")
    html = client.get("/", headers=SPANISH).get_data(as_text=True)
    header = html[html.index("<header"):html.index("</header>")]
    assert 'name="language" value="es"' in header and 'name="language" value="en"' in header
    assert "Español" in header and "English" in header and 'aria-label="Idioma: Español. Cambiar idioma"' in header


def test_numbers_and_money_are_written_the_languages_way(app):
    with app.test_request_context(headers=SPANISH):
        assert money(Decimal("1234.5")) == "1.234,50" and number(12345) == "12.345"
    with app.test_request_context(headers=ENGLISH):
        assert money(Decimal("1234.5")) == "1,234.50" and number(12345) == "12,345"


def test_a_refusal_says_its_labels_in_the_language_and_its_codes_as_they_are(app):
    """A refusal's figures that are marked labels (a refund's status) are said in the language; an
    LPN or a name the catalogue lacks stays as written."""
    from app.errors import Conflict
    from app.web.i18n import spoken

    refused = Conflict("The refund is already %(status)s.", status="pending approval")
    with app.test_request_context(headers=SPANISH):
        assert spoken(refused) == "El reembolso ya está pendiente de aprobación."
        assert spoken(Conflict("Unit %(lpn)s already has a refund trigger.", lpn="LP00000042")) == \
            "La unidad LP00000042 ya tiene un reembolso."
    with app.test_request_context(headers=ENGLISH):
        assert spoken(refused) == "The refund is already pending approval."


def test_the_desk_speaks_spanish_to_a_supervisor_who_chose_it(client, world, session):
    login(client, "super")
    client.post("/language", data={"language": "es"})
    desk = client.get("/desk", headers=ENGLISH).get_data(as_text=True)
    assert "Mesa del supervisor" in desk and "Aprobaciones de reembolso" in desk and "Incidencias" in desk
    assert "Supervisor desk" not in desk and "Refund approvals" not in desk
    queue = client.get("/desk/quarantine", headers=ENGLISH).get_data(as_text=True)
    assert "<h1>Cuarentena</h1>" in queue and "Primero los más antiguos" in queue and "Oldest first" not in queue
    # The labels the rules keep in English (app.words.N_) are read in Spanish where they are shown.
    assert "Liberar a stock" in queue or "Nada en espera" in queue
    found = client.get("/desk/search?q=nothing-like-this", headers=ENGLISH).get_data(as_text=True)
    assert "Nada encontrado para" in found and "Nothing found" not in found


def test_a_refusal_on_the_handheld_is_said_in_spanish_and_the_api_keeps_english(client, world, session):
    login(client, "worker")
    client.post("/language", data={"language": "es"})
    # An item's barcode before any parcel: the use case refuses, in English; the worker reads it in Spanish.
    resp = client.post("/receive/scan", data={"code": "036000291452", "key": "lang-scan-1"},
                       headers={**ENGLISH, "HX-Request": "true"})
    text = resp.get_data(as_text=True)
    assert resp.status_code == 422
    assert "Escanea la etiqueta del paquete (RMA, seguimiento o número de pedido) antes que sus artículos." in text
    assert "before its items" not in text
    # A refusal with figures: the figure goes into the Spanish sentence.
    hx = {**ENGLISH, "HX-Request": "true"}
    assert client.post("/receive/warehouse", data={"warehouse_id": str(world.wh.id)}, headers=hx).status_code == 200
    opened = client.post("/receive/scan", data={"code": world.tracking.tracking_number, "key": "lang-open-1"}, headers=hx)
    assert "encontrado por número de seguimiento. Escanea los artículos." in opened.get_data(as_text=True)
    resp = client.post("/receive/scan", data={"code": "ZZNOSUCH9", "key": "lang-scan-2"}, headers=hx)
    assert resp.status_code == 422
    assert "Código desconocido &#39;ZZNOSUCH9&#39;" in resp.get_data(as_text=True)
    # The integration API is read by programs against an English reference: never translated.
    api = client.get("/api/v1/events?cursor=%00", headers=SPANISH)
    assert api.status_code == 400 and "NUL character" in api.get_json()["detail"]
