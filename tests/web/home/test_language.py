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
    assert "Pick a language from the list" in resp.get_data(as_text=True)
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
