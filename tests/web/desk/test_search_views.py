"""Search through the Flask client: the role matrix, scope (a partner finds nothing outside it), one
hit opens its page, several are grouped by kind, nothing found says what was searched, and no input
(empty, 10 kB, NUL, SQL wildcards, unicode) yields a server error or a pattern."""
from __future__ import annotations

import pytest

from tests.conftest import login
from tests.integration.desk.test_desk_services import row_counts

HX = {"HX-Request": "true"}
ROLES = ("worker", "super", "admin", "partner", "outsider")

SEARCHES = ("/desk/search", "/desk/search?q=RMA-7001", "/desk/search?q=NOPE", "/desk/search?q=Dana")


@pytest.mark.parametrize("role", ROLES)
def test_role_matrix(client, session, world, found, role):
    """Workers, supervisors and partners may search; admins may not; no search writes a row."""
    login(client, role)
    before = row_counts(session)
    for url in SEARCHES:
        for headers in ({}, HX):
            resp = client.get(url, headers=headers)
            assert resp.status_code == (403 if role == "admin" else 200 if "q=" not in url or "NOPE" in url
                                        or role == "outsider" else 302), (role, url, resp.status_code)
            assert row_counts(session) == before, (role, url)


def test_anonymous_is_sent_to_sign_in(client, found):
    for url in SEARCHES:
        resp = client.get(url)
        assert resp.status_code == 302 and "/login" in resp.headers["Location"]


def test_a_partner_finds_nothing_outside_its_scope(client, found):
    login(client, "partner")
    for q in ("RMA-5001", "1Z999AA10123456784", found["phone_lpn"], "SN-FAKE-9"):
        page = client.get("/desk/search", query_string={"q": q})
        assert page.status_code == 200 and b"Nothing found in your warehouses" in page.data, q
    # The order has two returns; the partner sees the one at its warehouse, and goes straight to it.
    resp = client.get("/desk/search?q=so-1001")
    assert resp.status_code == 302 and resp.headers["Location"].endswith(f"/desk/returns/{found['rma_3pl']}")
    resp = client.get("/desk/search?q=dana")  # the customer, through the return in scope
    assert resp.status_code == 302 and resp.headers["Location"].endswith(f"/desk/customers/{found['customer']}")
    client.post("/logout")
    login(client, "outsider")
    for q in ("RMA-7001", "Dana", "C-1", found["shirt_lpn"]):
        assert b"Nothing found in your warehouses" in client.get("/desk/search", query_string={"q": q}).data, q


@pytest.mark.parametrize("role", ["super", "worker"])
def test_one_hit_opens_its_page(client, world, found, role):
    login(client, role)
    unit_page = f"/desk/units/{found['phone']}" if role == "super" else f"/receive/units/{found['phone']}"
    cases = {found["phone_lpn"]: unit_page, found["phone_lpn"].lower(): unit_page, "SN-FAKE-9": unit_page,
             "RMA-5001": f"/desk/returns/{found['rma']}", " rma-5001 ": f"/desk/returns/{found['rma']}",
             "1Z999AA10123456784": f"/desk/returns/{found['rma']}",
             "C-1": f"/desk/customers/{found['customer']}", "dana b": f"/desk/customers/{found['customer']}"}
    for q, target in cases.items():
        resp = client.get("/desk/search", query_string={"q": q})
        assert resp.status_code == 302, (q, resp.status_code)
        assert resp.headers["Location"].endswith(target), (q, resp.headers["Location"])
        assert client.get(resp.headers["Location"]).status_code == 200, q


def test_several_hits_are_grouped_by_kind(client, found):
    login(client, "super")
    page = client.get("/desk/search?q=SO-1001").get_data(as_text=True)  # an order of two returns, a customer's reference
    assert "3 found" in page
    assert "Returns (2)" in page and "Customers (1)" in page and "Units" not in page
    assert page.index("Returns (2)") < page.index("Customers (1)")
    assert "RMA-5001" in page and "RMA-7001" in page and "Sam Lookalike" in page and "order number" in page


def test_nothing_found_says_what_was_searched(client, found):
    login(client, "super")
    page = client.get("/desk/search?q=NOPE-42").get_data(as_text=True)
    assert "Nothing found for" in page and "NOPE-42" in page
    assert "units by LPN and serial" in page
    empty = client.get("/desk/search?q=").get_data(as_text=True)
    assert "Nothing found" not in empty and "Type or scan" in empty


WEIRD = ["", " ", "\t\n", "%", "%%", "_", "__", "\\", "\\%", "D%", "Dan_", "' OR 1=1 --", "\"; DROP TABLE rmas; --",
         "Zoë Šťastná", "顧客", "🚚📦", "\u202e", "\ufeff", "A" * 64, "A" * 65, "A" * 200, "x" * 201, "é" * 10_000,
         "RMA-5001%", "LPN-%", "a\u0301", "\x7f", "<script>alert(1)</script>"]


def test_no_input_yields_a_server_error(client, found):
    login(client, "super")
    for q in WEIRD:
        for headers in ({}, HX):
            resp = client.get("/desk/search", query_string={"q": q}, headers=headers)
            assert resp.status_code in (200, 302), (q[:20], resp.status_code)
    assert client.get("/desk/search?q=%00").status_code == 400
    assert client.get("/desk/search?q=A%00B").status_code == 400
    assert client.get("/desk/search", query_string={"q": ["a", "b"]}).status_code in (200, 302)
    assert b"&lt;script&gt;" in client.get("/desk/search", query_string={"q": "<script>alert(1)</script>"}).data
    long = client.get("/desk/search", query_string={"q": "é" * 10_000}).get_data(as_text=True)
    assert "200 characters at most" in long and "é" * 201 not in long


def test_wildcards_are_text_not_patterns(client, found):
    login(client, "super")
    for q in ("%", "_", "%%", "D%", "Dan_", "_ana", "%Buyer", "Percy _", "Percy %%"):
        assert b"Nothing found" in client.get("/desk/search", query_string={"q": q}).data, q
    resp = client.get("/desk/search", query_string={"q": "percy % under_"})
    assert resp.status_code == 302 and "/desk/customers/" in resp.headers["Location"]


def test_the_search_box_is_on_the_desk_and_the_handheld_links_to_it(client, found):
    login(client, "super")
    assert b'action="/desk/search"' in client.get("/desk").data
    client.post("/logout")
    login(client, "partner")
    scan = client.get("/receive").get_data(as_text=True)
    assert 'href="/desk/search"' in scan
    page = client.get("/desk/search").get_data(as_text=True)
    assert 'action="/desk/search"' in page and "/desk/counts" not in page and "/desk/rules" not in page
