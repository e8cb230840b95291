"""The inspection queue on the handheld (/receive/queue, /receive/queue/next) through the Flask
client, on SQLite and PostgreSQL: who may see it, what each sees, bad parameters."""
from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import login
from tests.helpers import receive_unit

HX = {"HX-Request": "true"}
UNIT_IDS = re.compile(r'class="queue-unit" href="/receive/units/(\d+)"')


def _at(client, warehouse) -> None:
    assert client.post("/receive/warehouse", data={"warehouse_id": warehouse.id}, headers=HX).status_code == 200


def _listed(resp) -> list[int]:
    return [int(i) for i in UNIT_IDS.findall(resp.get_data(as_text=True))]


@pytest.fixture
def units(session, world):  # type: ignore[no-untyped-def]
    """A phone and a tee at WH1, a phone at the 3PL's warehouse for its merchant and one for another."""
    w = world.actor("worker")
    return {"phone": receive_unit(session, world, "phone", w).id, "tee": receive_unit(session, world, "shirt", w).id,
            "3pl": receive_unit(session, world, "phone", w, warehouse=world.wh3pl).id,
            "3pl_other": receive_unit(session, world, "phone", w, warehouse=world.wh3pl, merchant=world.other_merchant).id}


@pytest.mark.parametrize("username", ["worker", "super"])
def test_staff_see_the_queue_of_the_warehouse_they_work_at(client, world, units, username):
    login(client, username)
    _at(client, world.wh)
    page = client.get("/receive/queue")
    body = page.get_data(as_text=True)
    assert page.status_code == 200 and "<html" in body and "Inspection queue" in body
    assert _listed(page) == [units["phone"], units["tee"]]  # $699 before $25, neither sells fast
    assert "high value: $699" in body and "2 units waiting for inspection here" in body
    assert 'href="/receive/queue/next"' in body and 'href="/receive/queue">Queue</a>' in body
    frag = client.get("/receive/queue", headers=HX)
    assert frag.status_code == 200 and "<html" not in frag.get_data(as_text=True) and _listed(frag) == _listed(page)
    nxt = client.get("/receive/queue/next")
    assert nxt.status_code == 302 and nxt.headers["Location"].endswith(f"/receive/units/{units['phone']}")
    _at(client, world.wh3pl)
    assert _listed(client.get("/receive/queue")) == [units["3pl"], units["3pl_other"]]


def test_a_partner_sees_only_their_organisations_units_and_no_amount(client, world, units):
    login(client, "partner")
    page = client.get("/receive/queue")  # no warehouse chosen yet: the picker, theirs only
    body = page.get_data(as_text=True)
    assert page.status_code == 200 and "Where are you working?" in body and "FastLane Reno" in body and "Main DC" not in body
    chosen = client.post("/receive/warehouse", data={"warehouse_id": world.wh3pl.id, "next": "/receive/queue"})
    assert chosen.status_code == 302 and chosen.headers["Location"].endswith("/receive/queue")
    page = client.get("/receive/queue")
    body = page.get_data(as_text=True)
    assert _listed(page) == [units["3pl"]] and "high value" in body and "$" not in body
    nxt = client.get("/receive/queue/next")
    assert nxt.headers["Location"].endswith(f"/receive/units/{units['3pl']}")
    for other in (units["phone"], units["3pl_other"]):
        assert client.get(f"/receive/units/{other}").status_code == 404
    # a warehouse not theirs cannot be chosen, so its queue is never shown
    refused = client.post("/receive/warehouse", data={"warehouse_id": world.wh.id, "next": "/receive/queue"}, headers=HX)
    assert refused.status_code == 422
    assert _listed(client.get("/receive/queue")) == [units["3pl"]]


def test_a_partner_of_another_organisation_sees_none_of_them(client, world, units):
    login(client, "outsider")
    refused = client.post("/receive/warehouse", data={"warehouse_id": world.wh3pl.id}, headers=HX)
    assert refused.status_code == 422
    body = client.get("/receive/queue").get_data(as_text=True)
    assert "No warehouse is open to you" in body and not UNIT_IDS.search(body)
    nxt = client.get("/receive/queue/next")
    assert nxt.status_code == 302 and nxt.headers["Location"].endswith("/receive/queue")


def test_admins_and_strangers_are_refused(client, world, units):
    assert client.get("/receive/queue").status_code == 302  # to sign in
    assert client.get("/receive/queue/next").status_code == 302
    login(client, "admin")
    assert client.get("/receive/queue").status_code == 403  # admins run the system, not the dock
    assert client.get("/receive/queue/next").status_code == 403


def test_an_empty_queue_says_so_and_next_unit_comes_back(client, world):
    login(client, "worker")
    _at(client, world.wh)
    body = client.get("/receive/queue").get_data(as_text=True)
    assert "Nothing waits for inspection here." in body and 'id="next-unit"' not in body
    nxt = client.get("/receive/queue/next", follow_redirects=True)
    assert nxt.status_code == 200 and "Nothing waits for inspection here." in nxt.get_data(as_text=True)


def test_after_a_disposition_next_unit_opens_the_next_one(client, world, units):
    login(client, "worker")
    _at(client, world.wh)
    client.post(f"/receive/units/{units['tee']}/inspect", data={"grade": "A", "packaging": "sealed", "key": "queue-key-1"}, headers=HX)
    done = client.post(f"/receive/units/{units['tee']}/dispose", data={"key": "queue-key-2"}, headers=HX)
    assert done.status_code == 200 and 'href="/receive/queue/next"' in done.get_data(as_text=True)
    assert _listed(client.get("/receive/queue")) == [units["phone"]]
    assert client.get("/receive/queue/next").headers["Location"].endswith(f"/receive/units/{units['phone']}")


def test_pages_of_the_queue(client, world, session):
    w = world.actor("worker")
    ids = [receive_unit(session, world, "shirt", w).id for _ in range(27)]
    login(client, "worker")
    _at(client, world.wh)
    first, second = client.get("/receive/queue"), client.get("/receive/queue?page=2")
    assert len(_listed(first)) == 25 and len(_listed(second)) == 2 and set(_listed(first) + _listed(second)) == set(ids)
    assert "page 1 of 2" in first.get_data(as_text=True) and 'href="/receive/queue?page=2"' in first.get_data(as_text=True)
    beyond = client.get("/receive/queue?page=99")
    assert beyond.status_code == 200 and "No units on this page." in beyond.get_data(as_text=True)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(page=st.text(max_size=30) | st.sampled_from(["0", "-1", "1e9", "99999999999999999999", "2147483647", "100001",
                                                    "1.5", "%00", "' OR 1=1 --", "\u0661"]),
       extra=st.dictionaries(st.sampled_from(["page", "sort", "warehouse", "type", "per_page"]), st.text(max_size=20),
                             max_size=3))
def test_no_parameter_yields_a_server_error(client, world, page, extra):
    with client.session_transaction() as s:
        signed_in = "_user_id" in s
    if not signed_in:
        login(client, "worker")
        _at(client, world.wh)
    for url in ("/receive/queue", "/receive/queue/next"):
        resp = client.get(url, query_string={**extra, "page": page})
        assert resp.status_code < 500, resp.data[:300]
        resp = client.get(url, query_string={**extra, "page": page}, headers=HX)
        assert resp.status_code < 500, resp.data[:300]


def test_the_desk_links_to_the_queue(client, world):
    login(client, "super")
    desk = client.get("/desk").get_data(as_text=True)
    assert 'href="/receive/queue">Open the inspection queue</a>' in desk


def test_two_workers_pressing_next_unit_at_once_get_the_same_unit_until_it_is_inspected(app, world, units):
    """No claim is taken (it would need a column): both get the head of the queue; once the first
    has saved the inspection, the unit leaves the queue and Next unit gives the second the one after."""
    first, second = app.test_client(), app.test_client()
    for client, username in ((first, "worker"), (second, "worker2")):
        login(client, username)
        _at(client, world.wh)
    heads = [c.get("/receive/queue/next").headers["Location"] for c in (first, second)]
    assert heads[0] == heads[1] and heads[0].endswith(f"/receive/units/{units['phone']}")
    saved = first.post(f"/receive/units/{units['phone']}/inspect",
                       data={"grade": "B", "packaging": "opened", "key": "queue-key-3"}, headers=HX)
    assert saved.status_code == 200
    assert second.get("/receive/queue/next").headers["Location"].endswith(f"/receive/units/{units['tee']}")
    # the second worker, still on the phone's screen, sees it graded by the first
    assert 'name="grade" value="B" checked' in second.get(f"/receive/units/{units['phone']}").get_data(as_text=True)
