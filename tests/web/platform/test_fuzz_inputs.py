"""Hypothesis fuzz of every route, URL id and form field on PostgreSQL: whatever arrives, the
answer is never a server error. Ids out of range (2**31 up to past 2**64) are "not found" or "not
a number"; NUL characters are refused and never stored; numbers past a column's precision are
refused with a message."""
from __future__ import annotations

import re
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import String, Text, func, or_, select

from app.db import Base, db
from app.desk.rules import CONDITION_KEYS
from tests.conftest import login

HX = {"HX-Request": "true"}

# Every field name a view, form or template reads (grep of app/ and templates/), the rules
# editor's first row, every checklist answer and a version per row for bulk decisions.
FIELDS = sorted(
    {"action", "active", "amount", "autoprint", "base_version", "channel", "choice", "code", "context", "count",
     "credit", "decision", "disposition", "grade", "host", "idempotency_key", "key", "kind", "label", "lpn", "n",
     "name", "next", "note", "notes", "order", "override", "override_reason", "packaging", "page", "per_page", "port",
     "printer_id", "reason", "parcel_id", "refund_ids", "resolution", "rma", "rma_line_id", "sort", "start", "stock",
     "to_state", "type", "unit_id", "unit_ids", "v-1", "v-2", "version", "view", "warehouse", "warehouse_id",
     "zpl_stock", "username", "password", "remember", "components", "rules", "kits", "q", "items", "problem", "language",
     "owner", "avoidable", "responsible_party", "description", "by", "metric", "period", "export"}
    | {f"r0-{k}" for k in (*CONDITION_KEYS, "position", "name", "disposition", "refund_action",
                           "restocking_fee_pct", "enabled", "remove", "new")}
    | {f"q_{k}" for k in ("powers_on", "screen_ok", "accessories", "factory_reset", "no_liquid", "tags_attached",
                          "unworn", "no_stains", "size_matches", "seal_intact", "unused", "in_date", "lot_readable",
                          "all_parts", "part_1", "part_2")})

EDGES = ["0", "-1", "1", "2", "3", "2147483647", "2147483648", "4294967296", "9223372036854775807",
         "9223372036854775808", "18446744073709551616", "1" * 40, "1e400", "-1e400", "NaN", "Infinity", "-0",
         " 7 ", "١٢", "0x10", "9999999999.99", "10000000000", "99999999999999999999.999", "0.000000001",
         "\x00", "a\x00b", "", " ", "yes", "no", "on", "approve", "reject", "available", "A", "quarantine",
         "restock", "4x6", "a4", "2x1", "lpn", "unit", "RMA-5001", "SN-PHONE-0001", "<script>", "' OR 1=1 --",
         "x" * 600, "%00", "..", "/etc/passwd", "127.0.0.1", "169.254.169.254", "10.0.0.5"]
VALUES = st.one_of(st.sampled_from(EDGES), st.integers(-2**70, 2**70).map(str), st.text(max_size=30),
                   st.decimals(allow_nan=True, allow_infinity=True).map(str))
IDS = st.one_of(st.integers(0, 40), st.sampled_from([2**31 - 1, 2**31, 2**32, 2**63 - 1, 2**63, 2**64, 10**30]),
                st.integers(0, 2**70))
SEGMENT = st.one_of(st.sampled_from(["unidentified_parcel", "serial_mismatch", "wrong_item", "defective"]),
                    st.text(min_size=1, max_size=20))

EXCLUDED = {"signin.logout", "static"}  # signing out ends the fuzzing client's session


def _routes(app) -> list[tuple[str, str, str]]:  # type: ignore[no-untyped-def]
    return sorted((rule.rule, method, rule.endpoint) for rule in app.url_map.iter_rules()
                  if rule.endpoint not in EXCLUDED for method in rule.methods - {"HEAD", "OPTIONS"})


def _url(data, rule: str) -> str:  # type: ignore[no-untyped-def]
    def fill(match: re.Match) -> str:
        if match.group(1) == "int":
            return str(data.draw(IDS))
        return quote(data.draw(SEGMENT), safe="")
    return re.sub(r"<(?:(\w+)(?:\([^)]*\))?:)?\w+>", fill, rule)


@pytest.fixture
def clients(app, world):  # type: ignore[no-untyped-def]
    """One signed-in client per role, and one that is not signed in."""
    signed = {role: login(app.test_client(), user) for role, user in
              (("worker", "worker"), ("supervisor", "super"), ("partner", "partner"), ("admin", "admin"))}
    return {**signed, "anonymous": app.test_client()}


@pytest.mark.pg_only
@settings(max_examples=600, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_no_input_gives_a_server_error(app, clients, data):
    route, method, endpoint = data.draw(st.sampled_from(_routes(app)), label="route")
    client = clients[data.draw(st.sampled_from(sorted(clients)), label="who")]
    url = _url(data, route)
    fields = data.draw(st.dictionaries(st.sampled_from(FIELDS), VALUES, max_size=8), label="fields")
    headers = HX if data.draw(st.booleans(), label="htmx") else {}
    if method == "GET":
        resp = client.get(url, query_string=fields, headers=headers)
    else:
        resp = client.open(url, method=method, data=fields, headers=headers)
    assert resp.status_code < 500, (method, url, fields, resp.status_code, resp.data[:300])


def test_nul_characters_are_refused_in_every_field_and_never_stored(app, clients):
    """SQLite would store them silently, PostgreSQL fails on them: both refuse them with a 400."""
    for name in FIELDS:
        for path, data in (("/receive/scan", {"code": "A-1", name: "SKU\x00X"}),
                           ("/labels/printers", {"name": "Bench", "host": "10.0.0.9", "port": "9100", name: "P\x00"})):
            resp = clients["supervisor"].post(path, data=data, headers=HX)
            assert resp.status_code == 400 and b"NUL character" in resp.data, (path, name, resp.status_code)
    with app.app_context():
        if db.engine.dialect.name == "sqlite":
            for table in Base.metadata.sorted_tables:
                texts = [c for c in table.c if isinstance(c.type, (String, Text))]
                if texts:
                    hits = db.session.scalar(select(func.count()).select_from(table).where(
                        or_(*[func.instr(c, "\x00") > 0 for c in texts])))
                    assert hits == 0, table.name
