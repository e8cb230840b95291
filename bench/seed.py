"""Bulk-seed a large, consistent Dockhand database for the benchmark with set-based SQL.

Everything big is written with ``INSERT ... SELECT generate_series`` inside PostgreSQL (no
Python loop per row): return units with their whole history in the append-only ledger,
balances recomputed from it, refund triggers and their events, inspections, audit entries and
outbox events. The small reference data (warehouses, locations, products and barcodes, users,
rules) is built in Python and written in a few statements.

What the benchmark drives is seeded too, and returned as a :class:`BenchWorld`:

- one worker login per client (``bench01`` ...), all with the password ``BENCH_PASSWORD``;
- per client, a pool of parcels (RMAs of 2 lines x 5 units of the client's own SKUs, so
  clients do not contend for the same balance rows) for the scan phase, and a pool of units
  already ``received`` (inspection pending) for the confirm-disposition phase;
- two RMAs for the size probe: one with 2 lines and one with 500 lines.

Consistency: every unit's state is the ``to_state`` of its last ledger entry, balances equal
the ledger summed, every unit has its refund trigger in the status its state implies, and
every ledger entry has its audit entry and outbox event. :func:`check` verifies the first two.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import psycopg
from psycopg.types.json import Jsonb
from werkzeug.security import generate_password_hash

from app.catalog.models import LOCATION_TYPES
from app.disposition import domain as rules_domain

BENCH_PASSWORD = "bench-password-1"
MERCHANTS = 5
WAREHOUSES = 4  # the 4th is run by a 3PL partner
CHANNELS = (("web", "Web store"), ("marketplace", "Marketplace"), ("retail", "Retail store"))
REASONS = ("defective", "no_longer_needed", "wrong_size", "damaged_in_transit", "not_as_described",
           "arrived_late", "better_price")
BIG_TABLES = ["ledger_entries", "audit_entries", "outbox_events", "refund_events", "refund_triggers", "return_units",
              "idempotency_records", "inspections", "return_exceptions", "receipts", "rmas", "rma_lines", "orders",
              "order_lines", "carrier_trackings", "shipped_serials", "customers"]
PARCEL_LINES = 2
PARCEL_QTY = 5  # units per line: a parcel holds PARCEL_LINES * PARCEL_QTY items
SIZE_PROBE = (2, 500)
# state -> location type (index into LOCATION_TYPES, 1-based) where a unit in that state sits
STATE_LOCATION = {"received": "dock", "available": "stock", "quarantine": "quarantine", "refurbish": "refurbish",
                  "vendor_return": "vendor_return", "liquidation": "liquidation", "disposed": "scrap"}
STATE_DISPOSITION = {"available": "restock", "refurbish": "refurbish", "quarantine": "quarantine",
                     "vendor_return": "return_to_vendor", "liquidation": "liquidate", "disposed": "dispose"}


@dataclass
class Parcel:
    """A parcel a client receives: its RMA number and the item barcodes to scan, in order."""

    number: str
    items: list[str]


@dataclass
class BenchWorld:
    """What the load driver needs from the seed."""

    password: str
    users: list[str]  # one per client
    parcels: list[list[Parcel]]  # per client
    confirm_units: list[list[int]]  # per client: units in `received`, not inspected yet
    size_user: str
    size_parcels: dict[int, Parcel]  # RMA size (lines) -> parcel
    counts: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    steps: list[tuple[str, float]] = field(default_factory=list)


def libpq_url(url: str) -> str:
    """SQLAlchemy URL -> libpq URL."""
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def gs1_check(body: str) -> str:
    """GS1 mod-10 check digit."""
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(body)))
    return str((10 - total % 10) % 10)


def _conditions_json(conditions: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in dict(conditions).items():
        out[k] = list(v) if isinstance(v, tuple) else format(v, "f") if isinstance(v, Decimal) else v
    return out


def _products(n: int) -> list[tuple[Any, ...]]:
    """(id, sku, name, category, unit_value, serial_tracked, lot_tracked, merchant_id, ean13)."""
    rows = []
    for i in range(1, n + 1):
        cat = ("electronics", "apparel", "health_beauty")[i % 3]
        if cat == "electronics":
            value = Decimal(49 + (i * 37) % 850)
        elif cat == "apparel":
            value = Decimal(9 + (i * 13) % 110)
        else:
            value = Decimal(5 + (i * 7) % 75)
        ean13 = "2" + f"{i:011d}"
        ean13 += gs1_check(ean13)
        prefix = {"electronics": "EL", "apparel": "AP", "health_beauty": "HB"}[cat]
        rows.append((i, f"{prefix}-{i:05d}", f"Bench {cat.replace('_', ' ')} item {i}", cat, value + Decimal("0.99"),
                     cat == "electronics" and i % 2 == 0, cat == "health_beauty", (i % MERCHANTS) + 1, ean13))
    return rows


class Seeder:
    """Writes the world through one psycopg connection, timing each step."""

    def __init__(self, conn: psycopg.Connection, *, verbose: bool = True) -> None:
        self.conn = conn
        self.verbose = verbose
        self.steps: list[tuple[str, float]] = []

    def sql(self, label: str, statement: str, params: Any = None) -> int:
        t0 = time.perf_counter()
        cur = self.conn.execute(statement, params)
        dt = time.perf_counter() - t0
        self.steps.append((label, dt))
        if self.verbose and dt > 0.5:
            print(f"    {label:<34} {dt:6.1f} s  ({cur.rowcount} rows)", flush=True)
        return cur.rowcount

    def many(self, statement: str, rows: list[tuple[Any, ...]]) -> None:
        with self.conn.cursor() as cur:
            cur.executemany(statement, rows)


def seed(url: str, *, units: int, ledger: int, clients: int, parcels_per_client: int, confirm_per_client: int,
         products: int = 1000, verbose: bool = True) -> BenchWorld:
    """Fill an empty, migrated database. Returns what the benchmark drives."""
    if ledger < units:
        raise SystemExit("--ledger must be at least --units (every unit has its `received` entry)")
    if products < 200 + 20 * clients:
        raise SystemExit("too few products for that many clients")
    units += units % 2  # two units per historical order
    orders = units // 2
    customers = max(1000, units // 5)
    confirm_total = clients * confirm_per_client
    if confirm_total > units // 2:
        raise SystemExit("--units too small for the confirm pools")
    history_units = units - confirm_total  # units with a full history; the rest wait for inspection
    rest = ledger - confirm_total  # ledger rows for the history units
    base, extra = divmod(rest, history_units)
    t_start = time.perf_counter()
    conn = psycopg.connect(libpq_url(url), autocommit=False)
    s = Seeder(conn, verbose=verbose)
    try:
        try:  # skip FK and append-only triggers while loading (ids are consistent by construction)
            conn.execute("SET session_replication_role = replica")
        except psycopg.Error:
            conn.rollback()
        conn.execute("SET LOCAL jit = off")  # JIT-compiling these big INSERT ... SELECTs costs more than it saves
        conn.execute("SET LOCAL synchronous_commit = off")
        conn.execute("SET LOCAL work_mem = '256MB'")
        conn.execute("SET LOCAL maintenance_work_mem = '512MB'")
        if conn.execute("SELECT count(*) FROM products").fetchone()[0]:
            raise SystemExit("the bench database is not empty")
        # Truncating in the loading transaction lets wal_level=minimal skip the WAL for these tables;
        # secondary indexes are dropped now and built once at the end (faster than row-by-row upkeep).
        tables = [r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                                             "AND tablename <> 'alembic_version'")]
        # The migration's categories and their first checklists are kept through the truncate.
        migrated = {"categories": conn.execute("SELECT code, name, active FROM categories").fetchall(),
                    "checklist_versions": conn.execute("SELECT category, version, items, note, author_id, created_at "
                                                       "FROM checklist_versions").fetchall()}
        conn.execute(f"TRUNCATE {', '.join(tables)}")
        indexes = conn.execute("""
            SELECT i.indexname, i.indexdef FROM pg_indexes i WHERE i.schemaname = 'public' AND i.tablename = ANY(%s)
            AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)""", (BIG_TABLES,)).fetchall()
        for name, _ in indexes:
            conn.execute(f"DROP INDEX {name}")

        # ------------------------------------------------------------------ reference data
        s.many("INSERT INTO partner_orgs (id, name) VALUES (%s, %s)", [(1, "Bench 3PL")])
        s.many("INSERT INTO merchants (id, code, name) VALUES (%s, %s, %s)",
               [(m, f"M{m}", f"Bench merchant {m}") for m in range(1, MERCHANTS + 1)])
        s.many("INSERT INTO partner_org_merchants (partner_org_id, merchant_id) VALUES (%s, %s)", [(1, MERCHANTS)])
        s.many("INSERT INTO sales_channels (id, code, name) VALUES (%s, %s, %s)",
               [(i, c, n) for i, (c, n) in enumerate(CHANNELS, start=1)])
        s.many("INSERT INTO warehouses (id, code, name, partner_org_id) VALUES (%s, %s, %s, %s)",
               [(w, f"WH{w}", f"Bench warehouse {w}", 1 if w == WAREHOUSES else None) for w in range(1, WAREHOUSES + 1)])
        locs = []
        for w in range(1, WAREHOUSES + 1):
            for t_i, t in enumerate(LOCATION_TYPES, start=1):
                lid = (w - 1) * len(LOCATION_TYPES) + t_i
                locs.append((lid, w, f"{t.upper()}-01", t, f"LOC:WH{w}-{t.upper()}-01"))
        lid = len(locs)
        for w in range(1, WAREHOUSES + 1):
            for b in range(1, 51):
                lid += 1
                locs.append((lid, w, f"BIN-{b:03d}", "stock", f"LOC:WH{w}-BIN-{b:03d}"))
        s.many("INSERT INTO locations (id, warehouse_id, code, type, barcode) VALUES (%s, %s, %s, %s, %s)", locs)
        prods = _products(products)
        with conn.cursor().copy("COPY products (id, sku, name, category, unit_value, serial_tracked, lot_tracked, "
                                "merchant_id) FROM STDIN") as cp:
            for p in prods:
                cp.write_row(p[:8])
        with conn.cursor().copy("COPY product_barcodes (id, code, kind, product_id) FROM STDIN") as cp:
            for p in prods:
                cp.write_row((2 * p[0] - 1, "0" + p[8], "ean", p[0]))  # stored as GTIN-14
                upc = f"4{p[0]:010d}"
                cp.write_row((2 * p[0], "00" + upc + gs1_check(upc), "upc", p[0]))
        s.many("INSERT INTO reason_codes (code, label, active) VALUES (%s, %s, true)",
               [(r, r.replace("_", " ").capitalize()) for r in REASONS])
        s.many("INSERT INTO categories (code, name, active) VALUES (%s, %s, %s)", migrated["categories"])
        s.many("INSERT INTO checklist_versions (category, version, items, note, author_id, created_at) "
               "VALUES (%s, %s, %s, %s, %s, %s)",
               [(c, v, Jsonb(items), note, author, at) for c, v, items, note, author, at in migrated["checklist_versions"]])
        s.many("INSERT INTO disposition_rules (position, name, conditions, disposition, refund_action, "
               "restocking_fee_pct, enabled) VALUES (%s, %s, %s, %s, %s, %s, %s)",
               [(r.position, r.name, Jsonb(_conditions_json(r.conditions)), r.disposition, r.refund_action,
                 r.restocking_fee_pct, r.enabled) for r in rules_domain.DEFAULT_RULES])
        pw = generate_password_hash(BENCH_PASSWORD)
        bench_users = [f"bench{i:02d}" for i in range(1, clients + 1)]
        size_user = "benchsize"
        users = [(u, u.title(), "worker", None, 1) for u in bench_users + [size_user]]
        users += [(f"worker{i:03d}", f"Worker {i}", "worker", None, 1 + i % (WAREHOUSES - 1)) for i in range(1, 41)]
        users += [(f"super{i}", f"Supervisor {i}", "supervisor", None, 1) for i in range(1, 4)]
        users += [("partner1", "Partner One", "partner", 1, WAREHOUSES), ("admin", "Admin", "admin", None, None)]
        s.many("INSERT INTO users (id, username, name, password_hash, role, partner_org_id, home_warehouse_id, active, "
               "created_at) VALUES (%s, %s, %s, %s, %s, %s, %s, true, now())",
               [(i, u, n, pw, r, org, home) for i, (u, n, r, org, home) in enumerate(users, start=1)])
        uid = {u[0]: i for i, u in enumerate(users, start=1)}
        worker_lo, worker_n = uid["worker001"], 40
        super_lo = uid["super1"]
        s.sql("customers", "INSERT INTO customers (id, external_ref, name) "
              "SELECT c, 'C-' || c, 'Customer ' || c FROM generate_series(1, %s) c", (customers,))

        # ------------------------------------------------------------------ history: orders, RMAs, units
        p = {"orders": orders, "units": units, "P": products, "M": MERCHANTS, "W": WAREHOUSES, "C": customers,
             "hist": history_units, "base": base, "extra": extra, "wlo": worker_lo, "wn": worker_n, "slo": super_lo,
             "nloc": len(LOCATION_TYPES)}
        s.sql("orders", """
            INSERT INTO orders (id, number, merchant_id, channel_id, customer_id, placed_at, currency)
            SELECT o, 'SO-' || lpad(o::text, 8, '0'), 1 + o %% %(M)s, 1 + o %% 3, 1 + (o * 7) %% %(C)s,
                   now() - interval '420 days' + o * (interval '400 days' / %(orders)s), 'USD'
            FROM generate_series(1, %(orders)s) o""", p)
        s.sql("order_lines", """
            INSERT INTO order_lines (id, order_id, product_id, quantity, unit_price)
            SELECT l, (l + 1) / 2, pr.id, 1, round(pr.unit_value * 0.9, 2)
            FROM generate_series(1, %(units)s) l JOIN products pr ON pr.id = 1 + (l::bigint * 7919) %% %(P)s""", p)
        s.sql("shipped_serials", """
            INSERT INTO shipped_serials (order_line_id, serial)
            SELECT ol.id, 'SNH' || lpad(ol.id::text, 9, '0') FROM order_lines ol
            JOIN products pr ON pr.id = ol.product_id WHERE pr.serial_tracked""")
        s.sql("rmas", """
            INSERT INTO rmas (id, number, order_id, merchant_id, channel_id, warehouse_id, customer_id, status, created_at, closed_at)
            SELECT o.id, 'RMA-' || lpad(o.id::text, 8, '0'), o.id, o.merchant_id, o.channel_id, 1 + o.id %% %(W)s,
                   o.customer_id, 'closed', o.placed_at + interval '5 days', o.placed_at + interval '12 days'
            FROM orders o""", p)
        s.sql("rma_lines", """
            INSERT INTO rma_lines (id, rma_id, product_id, order_line_id, quantity, reason_code)
            SELECT ol.id, ol.order_id, ol.product_id, ol.id, 1,
                   (ARRAY['defective','no_longer_needed','wrong_size','damaged_in_transit','not_as_described',
                          'arrived_late','better_price'])[1 + (ol.id * 31) %% 7]
            FROM order_lines ol""", p)
        s.sql("carrier_trackings", """
            INSERT INTO carrier_trackings (id, tracking_number, carrier, rma_id, status, last_event_at)
            SELECT r.id, '1ZBENCH' || lpad(r.id::text, 11, '0'), 'UPS', r.id, 'delivered', r.closed_at FROM rmas r""")
        s.sql("receipts", """
            INSERT INTO receipts (id, warehouse_id, rma_id, scanned_code, status, opened_by_id, opened_at, closed_at, closed_by_id)
            SELECT r.id, r.warehouse_id, r.id, r.number, 'closed', %(wlo)s + r.id %% %(wn)s, r.closed_at - interval '1 hour',
                   r.closed_at, %(wlo)s + r.id %% %(wn)s FROM rmas r""", p)
        # How many ledger entries unit u has (k), and its state after step s: the unit goes received ->
        # refurbish -> quarantine -> refurbish -> ... and ends in a state its last edge allows. Written
        # inline (not as SQL functions): a function call per row costs more than the insert.
        def k_of(u: str) -> str:
            return f"(CASE WHEN {u} > {history_units} THEN 1 WHEN {u} <= {extra} THEN {base + 1} ELSE {base} END)"

        def state_at(u: str, st: str, k: str) -> str:
            st = f"({st})"
            return f"""(CASE WHEN {st} = 0 THEN NULL WHEN {st} = 1 THEN 'received'
                WHEN {st} < {k} THEN CASE WHEN {st} %% 2 = 0 THEN 'refurbish' ELSE 'quarantine' END
                WHEN {k} = 2 THEN (ARRAY['available','refurbish','quarantine','disposed','liquidation'])[1 + {u} %% 5]
                WHEN ({k} - 1) %% 2 = 0 THEN (ARRAY['available','liquidation','disposed'])[1 + {u} %% 3]
                ELSE (ARRAY['available','vendor_return','disposed','refurbish'])[1 + {u} %% 4] END)"""

        def loc_of(w: str, state: str) -> str:
            whens = " ".join(f"WHEN '{st}' THEN {LOCATION_TYPES.index(t) + 1}" for st, t in STATE_LOCATION.items())
            return f"(({w} - 1) * {len(LOCATION_TYPES)} + CASE {state} {whens} END)"

        s.sql("return_units", f"""
            INSERT INTO return_units (id, lpn, product_id, warehouse_id, location_id, merchant_id, rma_id, rma_line_id,
                receipt_id, state, serial, lot, serial_status, paid_price, grade, packaging, disposition, decision_rule,
                inspected_at, inspected_by_id, received_at, received_by_id, state_changed_at, version)
            SELECT u.id, 'LP' || lpad(u.id::text, 8, '0'), rl.product_id, r.warehouse_id,
                   {loc_of("r.warehouse_id", "u.state")}, r.merchant_id, r.id, rl.id, r.id, u.state,
                   CASE WHEN pr.serial_tracked THEN 'SNH' || lpad(u.id::text, 9, '0') END,
                   CASE WHEN pr.lot_tracked THEN 'LOT' || (u.id %% 97) END,
                   CASE WHEN pr.serial_tracked THEN 'match' ELSE 'not_tracked' END, ol.unit_price,
                   CASE WHEN u.k > 1 THEN (ARRAY['A','B','C','D'])[1 + u.id %% 4] END,
                   CASE WHEN u.k > 1 THEN (ARRAY['sealed','opened','damaged','opened'])[1 + u.id %% 4] END,
                   (ARRAY['restock','refurbish','quarantine','return_to_vendor','liquidate','dispose',NULL])[
                       array_position(ARRAY['available','refurbish','quarantine','vendor_return','liquidation','disposed','received'], u.state)],
                   CASE WHEN u.k > 1 THEN 'bench history' END,
                   CASE WHEN u.k > 1 THEN u.at + interval '1 hour' END,
                   CASE WHEN u.k > 1 THEN %(wlo)s + u.id %% %(wn)s END,
                   u.at, %(wlo)s + u.id %% %(wn)s, u.at + u.k * interval '2 hours', u.k
            FROM (SELECT id, k, {state_at("id", "k", "k")} AS state,
                         now() - interval '400 days' + id * (interval '395 days' / %(units)s) AS at
                  FROM (SELECT id, {k_of("id")} AS k FROM generate_series(1, %(units)s) id) ids) u
            JOIN rma_lines rl ON rl.id = u.id JOIN rmas r ON r.id = rl.rma_id
            JOIN order_lines ol ON ol.id = rl.order_line_id JOIN products pr ON pr.id = rl.product_id""", p)
        s.sql("ledger_entries", f"""
            INSERT INTO ledger_entries (unit_id, product_id, warehouse_id, from_state, to_state, from_location_id,
                to_location_id, actor_id, actor_role, reason, at, idempotency_key)
            SELECT u.id, u.product_id, u.warehouse_id, st.f, st.t,
                   {loc_of("u.warehouse_id", "st.f")}, {loc_of("u.warehouse_id", "st.t")},
                   CASE WHEN st.f = 'quarantine' THEN %(slo)s + u.id %% 3 ELSE %(wlo)s + u.id %% %(wn)s END,
                   CASE WHEN st.f = 'quarantine' THEN 'supervisor' ELSE 'worker' END,
                   CASE WHEN st.f IS NULL THEN 'received from parcel ' || 'RMA-' || lpad(u.rma_id::text, 8, '0')
                        ELSE 'bench history step ' || s END,
                   u.received_at + (s - 1) * interval '2 hours', NULL
            FROM return_units u
            CROSS JOIN LATERAL generate_series(1, u.version) s
            CROSS JOIN LATERAL (SELECT {state_at("u.id", "s - 1", "u.version")} AS f,
                                       {state_at("u.id", "s", "u.version")} AS t) st
            ORDER BY u.id, s""", p)
        s.sql("balances", """
            INSERT INTO balances (product_id, warehouse_id, state, quantity)
            SELECT product_id, warehouse_id, state, count(*) FROM return_units GROUP BY 1, 2, 3""")
        s.sql("audit (ledger)", """
            INSERT INTO audit_entries (at, actor_id, actor_name, action, entity_type, entity_id, warehouse_id, reason, details)
            SELECT e.at, e.actor_id, 'Bench ' || e.actor_role,
                   CASE WHEN e.from_state IS NULL THEN 'unit.received' ELSE 'unit.moved' END, 'unit', e.unit_id,
                   e.warehouse_id, e.reason, ('{"from_state": ' || coalesce('"' || e.from_state || '"', 'null') || ', "to_state": "' || e.to_state || '"}')::json
            FROM ledger_entries e ORDER BY e.id""")
        s.sql("outbox (ledger)", """
            INSERT INTO outbox_events (at, type, aggregate_type, aggregate_id, payload)
            SELECT e.at, 'unit.state_changed', 'unit', e.unit_id,
                   ('{"unit_id": ' || e.unit_id || ', "lpn": "LP' || lpad(e.unit_id::text, 8, '0')
                    || '", "product_id": ' || e.product_id || ', "warehouse_id": ' || e.warehouse_id
                    || ', "from_state": ' || coalesce('"' || e.from_state || '"', 'null') || ', "to_state": "'
                    || e.to_state || '", "location_id": ' || e.to_location_id || ', "reason": "' || e.reason || '"}')::json
            FROM ledger_entries e ORDER BY e.id""")
        s.sql("inspections", """
            INSERT INTO inspections (unit_id, inspector_id, grade, packaging, answers, notes, created_at)
            SELECT id, inspected_by_id, grade, packaging, '{}'::json, NULL, inspected_at
            FROM return_units WHERE grade IS NOT NULL ORDER BY id""")
        s.sql("refund_triggers", """
            INSERT INTO refund_triggers (id, unit_id, rma_id, warehouse_id, status, currency, paid_amount, amount,
                refund_action, hold_reasons, inspected_at, inspected_by_id, decided_by_id, decided_at, decision_reason,
                pending_since, released_at, created_at, version)
            SELECT u.id, u.id, u.rma_id, u.warehouse_id, x.status, 'USD', u.paid_price,
                   CASE WHEN x.status = 'rejected' THEN 0 ELSE u.paid_price END,
                   CASE x.status WHEN 'awaiting_inspection' THEN NULL WHEN 'rejected' THEN 'none'
                                 WHEN 'pending_approval' THEN 'hold' ELSE 'full' END,
                   CASE WHEN x.status = 'pending_approval' THEN '["rule says hold"]'::json ELSE '[]'::json END,
                   u.inspected_at, u.inspected_by_id, NULL, NULL, NULL,
                   CASE WHEN x.status = 'pending_approval' THEN u.state_changed_at END,
                   CASE WHEN x.status = 'released' THEN u.state_changed_at END, u.received_at,
                   CASE x.status WHEN 'awaiting_inspection' THEN 1 WHEN 'released' THEN 3 ELSE 2 END
            FROM return_units u CROSS JOIN LATERAL (SELECT CASE
                    WHEN u.state = 'received' THEN 'awaiting_inspection' WHEN u.state = 'disposed' THEN 'rejected'
                    WHEN u.state = 'quarantine' THEN 'pending_approval' ELSE 'released' END AS status) x
            ORDER BY u.id""")
        s.sql("refund_events", """
            INSERT INTO refund_events (refund_id, from_status, to_status, amount, actor_id, reason, details, at)
            SELECT r.id, ev.f, ev.t, CASE WHEN ev.t = 'rejected' THEN 0 ELSE r.paid_amount END, %(wlo)s, ev.reason,
                   '{}'::json, r.created_at + ev.n * interval '1 hour'
            FROM refund_triggers r CROSS JOIN LATERAL (VALUES
                   (0, NULL, 'awaiting_inspection', 'unit received'),
                   (1, 'awaiting_inspection', CASE r.status WHEN 'released' THEN 'approved' ELSE r.status END, 'bench history'),
                   (2, 'approved', 'released', 'bench history')) ev(n, f, t, reason)
            WHERE ev.n < r.version ORDER BY r.id, ev.n""", p)
        s.sql("audit + outbox (refunds)", """
            WITH a AS (INSERT INTO audit_entries (at, actor_id, actor_name, action, entity_type, entity_id, warehouse_id, reason, details)
                       SELECT ev.at, ev.actor_id, 'Bench worker',
                              CASE WHEN ev.from_status IS NULL THEN 'refund.opened' ELSE 'refund.' || ev.to_status END,
                              'refund', ev.refund_id, r.warehouse_id, ev.reason,
                              json_build_object('from', ev.from_status, 'to', ev.to_status, 'amount', ev.amount::text)
                       FROM refund_events ev JOIN refund_triggers r ON r.id = ev.refund_id ORDER BY ev.id)
            INSERT INTO outbox_events (at, type, aggregate_type, aggregate_id, payload)
            SELECT ev.at, 'refund.' || ev.to_status, 'refund', ev.refund_id,
                   json_build_object('refund_id', ev.refund_id, 'unit_id', ev.refund_id, 'status', ev.to_status,
                                     'amount', ev.amount::text, 'currency', 'USD')
            FROM refund_events ev ORDER BY ev.id""")
        s.sql("idempotency_records", """
            INSERT INTO idempotency_records (key, operation, actor_id, fingerprint, result, created_at)
            SELECT 'hist-' || md5(u::text), 'scan_item', %(wlo)s + u %% %(wn)s, md5('f' || u), '{}'::json,
                   now() - interval '1 day' FROM generate_series(1, %(units)s) u""", p)
        s.sql("return_exceptions", """
            INSERT INTO return_exceptions (type, status, warehouse_id, merchant_id, rma_id, unit_id, receipt_id, product_id,
                quantity, value, details, opened_at, opened_by_id, resolved_at, resolved_by_id, resolution,
                resolution_reason, version)
            SELECT 'extra_item', 'resolved', u.warehouse_id, u.merchant_id, u.rma_id, u.id, u.receipt_id, u.product_id, 1,
                   u.paid_price, '{}'::json, u.received_at, u.received_by_id, u.received_at + interval '1 day',
                   %(slo)s, 'accepted', 'bench history', 2
            FROM return_units u WHERE u.id %% 50 = 0""", p)

        # ------------------------------------------------------------------ what the benchmark drives
        nonserial = [pr[0] for pr in prods if not pr[5]]
        if 20 * clients + 2 > len(nonserial):
            raise SystemExit(f"--products {products} is too few for {clients} clients (20 plain SKUs each)")
        ean = {pr[0]: pr[8] for pr in prods}
        world = BenchWorld(password=BENCH_PASSWORD, users=bench_users, parcels=[], confirm_units=[],
                           size_user=size_user, size_parcels={})
        next_order, next_line = orders + 1, units + 1
        parcel_rows: list[tuple[int, str, int, list[int], int]] = []  # (order id, number, user idx, product ids, qty)
        for c in range(clients):
            mine = nonserial[c * 20:(c + 1) * 20]
            plist = []
            for j in range(parcels_per_client):
                prods_j = [mine[(2 * j + k) % len(mine)] for k in range(PARCEL_LINES)]
                number = f"RMA-B{c + 1:02d}-{j + 1:05d}"
                parcel_rows.append((next_order, number, c, prods_j, PARCEL_QTY))
                plist.append(Parcel(number, [ean[pid] for pid in prods_j for _ in range(PARCEL_QTY)]))
                next_order += 1
            world.parcels.append(plist)
        used = set(nonserial[:20 * clients])
        for size in SIZE_PROBE:  # the first two lines are plain SKUs; the big RMA mixes in serial-tracked ones
            pool = [pid for pid in nonserial if pid not in used][:2]
            pool += [pid for pid in range(1, products + 1) if pid not in used and pid not in pool]
            prods_j = pool[:size]
            number = f"RMA-SIZE-{size:03d}"
            parcel_rows.append((next_order, number, -1, prods_j, 10))
            scannable = [pid for pid in prods_j if pid in set(nonserial)]
            world.size_parcels[size] = Parcel(number, [ean[pid] for pid in scannable])
            next_order += 1
        order_rows, line_rows, rma_rows, rma_line_rows, serial_rows = [], [], [], [], []
        serial_set = {pr[0] for pr in prods if pr[5]}
        value = {pr[0]: pr[4] for pr in prods}
        for oid, number, c, pids, qty in parcel_rows:
            merchant = 1 + oid % MERCHANTS
            order_rows.append((oid, f"SO-{number[4:]}", merchant, 1 + oid % 3, 1 + oid % customers))
            rma_rows.append((oid, number, oid, merchant, 1 + oid % 3, 1, 1 + oid % customers))
            for pid in pids:
                line_rows.append((next_line, oid, pid, qty, (value[pid] * Decimal("0.9")).quantize(Decimal("0.01"))))
                rma_line_rows.append((next_line, oid, pid, next_line, qty, REASONS[next_line % len(REASONS)]))
                if pid in serial_set:
                    serial_rows.append((next_line, f"SNB{next_line:09d}"))
                next_line += 1
        with conn.cursor().copy("COPY orders (id, number, merchant_id, channel_id, customer_id, placed_at, currency) "
                                "FROM STDIN") as cp:
            for r in order_rows:
                cp.write_row((*r, "2026-01-01T00:00:00Z", "USD"))
        with conn.cursor().copy("COPY order_lines (id, order_id, product_id, quantity, unit_price) FROM STDIN") as cp:
            for r in line_rows:
                cp.write_row(r)
        with conn.cursor().copy("COPY shipped_serials (order_line_id, serial) FROM STDIN") as cp:
            for r in serial_rows:
                cp.write_row(r)
        with conn.cursor().copy("COPY rmas (id, number, order_id, merchant_id, channel_id, warehouse_id, customer_id, "
                                "status, created_at) FROM STDIN") as cp:
            for r in rma_rows:
                cp.write_row((*r, "in_transit", "2026-01-02T00:00:00Z"))
        with conn.cursor().copy("COPY rma_lines (id, rma_id, product_id, order_line_id, quantity, reason_code) "
                                "FROM STDIN") as cp:
            for r in rma_line_rows:
                cp.write_row(r)
        with conn.cursor().copy("COPY carrier_trackings (id, tracking_number, carrier, rma_id, status) FROM STDIN") as cp:
            for r in rma_rows:
                cp.write_row((r[0], f"1ZB{r[0]:015d}", "UPS", r[0], "in_transit"))
        for c in range(clients):
            lo = history_units + c * confirm_per_client + 1
            world.confirm_units.append(list(range(lo, lo + confirm_per_client)))

        t0 = time.perf_counter()
        for _, ddl in indexes:
            conn.execute(ddl)
        s.steps.append(("indexes", time.perf_counter() - t0))
        if verbose:
            print(f"    {'indexes (' + str(len(indexes)) + ')':<34} {s.steps[-1][1]:6.1f} s", flush=True)

        # ------------------------------------------------------------------ sequences, statistics
        for table in ("audit_entries", "carrier_trackings", "customers", "disposition_rules", "inspections",
                      "ledger_entries", "locations", "merchants", "order_lines", "orders", "outbox_events",
                      "partner_orgs", "product_barcodes", "products", "receipts", "refund_events", "refund_triggers",
                      "return_exceptions", "return_units", "rma_lines", "rmas", "sales_channels", "shipped_serials",
                      "users", "warehouses"):
            conn.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                         f"(SELECT coalesce(max(id), 0) + 1 FROM {table}), false)")
        conn.execute("SELECT setval('lpn_seq', %s)", (units,))
        conn.commit()
        conn.autocommit = True
        t0 = time.perf_counter()
        vacuum(url)
        s.steps.append(("VACUUM (ANALYZE)", time.perf_counter() - t0))
        if verbose:
            print(f"    {'VACUUM (ANALYZE), 2 connections':<34} {s.steps[-1][1]:6.1f} s", flush=True)
        world.counts = {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]  # noqa: S608 - fixed names
                        for t in ("return_units", "ledger_entries", "balances", "refund_triggers", "refund_events",
                                  "audit_entries", "outbox_events", "rmas", "rma_lines", "orders", "order_lines",
                                  "products", "product_barcodes", "users", "idempotency_records")}
    finally:
        conn.close()
    world.seconds = time.perf_counter() - t_start
    world.steps = s.steps
    return world


def vacuum(url: str, jobs: int = 2) -> None:
    """VACUUM (ANALYZE) every table, biggest first, on `jobs` connections.

    Without it autovacuum wakes up for the freshly loaded tables and spends a core for minutes
    while the benchmark runs; a database in steady state has been vacuumed already."""
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        tables = [r[0] for r in conn.execute("SELECT relname FROM pg_stat_user_tables ORDER BY pg_total_relation_size(relid) DESC")]

    def worker(mine: list[str]) -> None:
        with psycopg.connect(libpq_url(url), autocommit=True) as c:
            for t in mine:
                c.execute(f'VACUUM (ANALYZE) "{t}"')

    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(jobs) as pool:
        for done in [pool.submit(worker, tables[i::jobs]) for i in range(jobs)]:
            done.result()


def check(url: str) -> dict[str, int]:
    """Consistency checks (all must be 0): balances vs ledger sums, unit state vs last ledger entry,
    units without a refund trigger, ledger rows without a unit."""
    with psycopg.connect(libpq_url(url)) as conn:
        q = {
            "balance_mismatches": """
                WITH led AS (
                    SELECT product_id, warehouse_id, state, sum(d) AS q FROM (
                        SELECT product_id, warehouse_id, to_state AS state, 1 AS d FROM ledger_entries
                        UNION ALL
                        SELECT product_id, warehouse_id, from_state, -1 FROM ledger_entries WHERE from_state IS NOT NULL) x
                    GROUP BY 1, 2, 3 HAVING sum(d) <> 0)
                SELECT count(*) FROM led FULL JOIN (SELECT * FROM balances WHERE quantity <> 0) b
                    USING (product_id, warehouse_id, state)
                WHERE led.q IS DISTINCT FROM b.quantity""",
            "state_mismatches": """
                SELECT count(*) FROM return_units u JOIN LATERAL (
                    SELECT to_state FROM ledger_entries e WHERE e.unit_id = u.id ORDER BY e.id DESC LIMIT 1) last ON true
                WHERE last.to_state <> u.state""",
            "units_without_refund": "SELECT count(*) FROM return_units u WHERE u.rma_line_id IS NOT NULL AND NOT EXISTS "
                                    "(SELECT 1 FROM refund_triggers r WHERE r.unit_id = u.id)",
            "orphan_ledger_rows": "SELECT count(*) FROM ledger_entries e WHERE NOT EXISTS "
                                  "(SELECT 1 FROM return_units u WHERE u.id = e.unit_id)",
        }
        return {k: conn.execute(v).fetchone()[0] for k, v in q.items()}
