"""Property test: random sequences of legal and illegal unit moves and refund actions.

A small model (written from product.md, not from app.ledger.domain) predicts each action's
outcome; the database must agree, and after every action:
- balances equal the ledger summed;
- no unit has two refund triggers;
- no refund is released or acknowledged before its unit was inspected;
- a unit's state is the to_state of its last ledger row;
- a refused (or replayed) action left no trace: ledger, audit, outbox, refund events,
  refunds, idempotency records, units and balances unchanged.

`missing` and back (product.md): only a correction takes a unit there (the floor's moves and
inspections are refused), supervisor only, with a reason, from and to received, available,
quarantine or refurbish; balances stay equal to the ledger throughout. (Four-eyes above the value
threshold is the reconciliation's use case: tests/integration/reconciliation.)
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, Phase, event, given, note, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from app.db import unit_of_work
from app.errors import (Conflict, DomainError, FourEyesViolation, IdempotencyKeyReused, IllegalTransition, NotFound,
                        NotPermitted, StaleVersion, ValidationFailed)
from app.catalog.models import Product
from app.ledger.idempotency import Result
from app.ledger.models import ReturnUnit
from app.ledger.services import UnitMoved, balance_table, ledger_sums, lock_unit, transition_unit
from app.ledger.writer import move_unit
from app.refunds.models import RefundTrigger
from app.refunds.services import RefundStatus, acknowledge_refund, approve_refund, reject_refund
from app.refunds.writer import settle_refund
from app.rows import write
from tests.helpers import (INTEGRATION, counts, inspect_and_dispose, last_ledger_states, lock_refund, receive_unit,
                           refund_of)

# ---- the model's rules, from product.md -------------------------------------------------------------
FLOOR = {"worker", "supervisor", "partner"}
SUP = {"supervisor"}
EDGES: dict[str, dict[str, set[str]]] = {
    "received": {s: FLOOR for s in ("available", "quarantine", "refurbish", "vendor_return", "liquidation", "disposed")},
    "quarantine": {s: SUP for s in ("available", "refurbish", "vendor_return", "liquidation", "disposed")},
    "refurbish": {s: FLOOR for s in ("available", "liquidation", "disposed", "quarantine")},
    "available": {"quarantine": SUP},
    "vendor_return": {}, "liquidation": {}, "disposed": {},
    "missing": {},
}
STATES = list(EDGES)
ON_HAND = ["received", "available", "quarantine", "refurbish"]
CORRECTIONS: dict[str, set[str]] = {**{s: {"missing"} for s in ON_HAND}, "missing": set(ON_HAND)}
THRESHOLD = Decimal("250.00")
PRICES = {"cheap": "25.00", "mid": "120.00", "dear": "699.00"}
USERS = ["worker", "worker2", "super", "super2", "partner", "admin"]
ACTIONS = ["full", "less_restocking_fee", "less_damage", "none", "hold"]


@dataclass
class MUnit:
    id: int
    wh: str
    merchant: str | None
    paid: Decimal
    refund_id: int
    state: str = "received"
    refund: str = "awaiting_inspection"
    amount: Decimal = Decimal("0")
    inspected_by: int | None = None
    override_by: int | None = None


@dataclass
class Model:
    units: list[MUnit] = field(default_factory=list)
    records: dict[str, tuple[str, tuple, int | None, Result]] = field(default_factory=dict)
    keys: list[str] = field(default_factory=list)
    calls: list[tuple[str, str, str, dict[str, Any]]] = field(default_factory=list)  # (op, user, key, kwargs)


# ---- strategies (drawn step by step, biased towards actions that can succeed) ------------------------
KINDS = ["receive"] * 3 + ["move"] * 5 + ["inspect"] * 4 + ["settle_raw"] + ["approve"] * 3 + ["reject"] * 2 \
    + ["ack"] * 2 + ["replay"] * 3 + ["correct"] * 3
key_mode = st.tuples(st.sampled_from(["new", "new", "new", "reuse"]), st.integers(0, 63))


def _visible(user: str, u: MUnit) -> bool:
    return user != "partner" or (u.wh == "wh3pl" and u.merchant in ("acme", None))


def _freeze(kwargs: dict[str, Any]) -> tuple:
    return tuple(sorted((k, str(v)) for k, v in kwargs.items()))


class Runner:
    """Executes actions against the services and checks them against the model."""

    def __init__(self, session, world) -> None:  # type: ignore[no-untyped-def]
        self.s, self.w = session, world
        self.actors = {u: world.actor(u) for u in world.users}
        self.role = {u: a.role for u, a in self.actors.items()}
        self.uid = {u: a.id for u, a in self.actors.items()}
        self.wh = {"wh": world.wh, "wh3pl": world.wh3pl}
        self.merchants = {"acme": world.merchant, "globex": world.other_merchant, None: None}
        self.m = Model()
        self.tag = uuid.uuid4().hex[:8]
        # Fresh SKUs per example: the example's balances, ledger and units are its own, so a
        # failure found once is found again when Hypothesis replays it on the same database.
        self.products: dict[str, str] = {}
        merchant_id = world.merchant.id
        with unit_of_work(session):
            for name, price in PRICES.items():
                prod = Product(sku=f"PT-{self.tag}-{name}", name=f"Property {name}", category="apparel",
                               unit_value=Decimal(price), merchant_id=merchant_id)
                session.add(prod)
                world.products[f"{self.tag}-{name}"] = prod
                self.products[name] = f"{self.tag}-{name}"
        self.product_ids = {world.products[k].id for k in self.products.values()}

    # -- helpers --
    def pick(self, data, likely=lambda u: True) -> MUnit | None:  # type: ignore[no-untyped-def]
        """A unit: mostly one for which the action can succeed, sometimes any."""
        if not self.m.units:
            return None
        good = [u for u in self.m.units if likely(u)]
        pool = good if good and data.draw(st.integers(0, 9), label="prefer") < 8 else self.m.units
        return pool[data.draw(st.integers(0, len(pool) - 1), label="unit")]

    def key(self, mode: tuple[str, int]) -> str:
        if mode[0] == "reuse" and self.m.keys:
            return self.m.keys[mode[1] % len(self.m.keys)]
        k = f"p-{self.tag}-{len(self.m.keys):04d}"
        self.m.keys.append(k)
        return k

    def db_version(self, unit_id: int) -> int:
        v = self.s.scalar(select(ReturnUnit.version).where(ReturnUnit.id == unit_id))
        self.s.rollback()
        return int(v)

    # -- the keyed calls: predict, run, compare --
    def keyed(self, op: str, user: str, key: str, kwargs: dict[str, Any], *, record: bool = True) -> None:
        if record:
            self.m.calls.append((op, user, key, kwargs))
        actor = INTEGRATION if user == "integration" else self.actors[user]
        actor_id = None if user == "integration" else self.uid[user]
        role = "integration" if user == "integration" else self.role[user]
        u = next(x for x in self.m.units if (x.id == kwargs.get("unit_id") or x.refund_id == kwargs.get("refund_id")))
        expect: type[DomainError] | str | None = None
        # Permission checks that run before the key is looked at.
        if op in ("approve", "reject") and role != "supervisor":
            expect = NotPermitted
        elif op == "ack" and role != "integration":
            expect = NotPermitted
        if expect is None and key in self.m.records:
            r_op, r_params, r_actor, r_result = self.m.records[key]
            expect = "replay" if (r_op, r_params, r_actor) == (op, _freeze(kwargs), actor_id) else IdempotencyKeyReused
        if expect is None:
            expect = self.predict(op, user, role, u, kwargs)
        fn = {"move": transition_unit, "approve": approve_refund, "reject": reject_refund, "ack": acknowledge_refund}[op]
        before = counts(self.s)
        try:
            result = fn(self.s, actor, idempotency_key=key, **kwargs)
        except DomainError as exc:
            event(f"{op}: {type(exc).__name__}")
            assert isinstance(expect, type) and isinstance(exc, expect), (op, user, kwargs, expect, exc)
            if expect is NotPermitted and op in ("approve", "reject"):
                assert not isinstance(exc, FourEyesViolation) or role == "supervisor"
            assert exc.message
            assert counts(self.s) == before, f"refused {op} left a trace"
            return
        assert not isinstance(expect, type), (op, user, kwargs, "expected", expect, "got", result)
        event(f"{op}: {expect}")
        if expect == "replay":
            assert result == replace(self.m.records[key][3], replayed=True)
            assert counts(self.s) == before, "a replay wrote something"
            return
        assert result.replayed is False
        after = counts(self.s)
        self.m.records[key] = (op, _freeze(kwargs), actor_id, result)
        self.apply(op, user, u, kwargs, result)
        assert after["idempotency"] == before["idempotency"] + 1
        if op == "move":
            assert after["ledger"] - before["ledger"] == 1 and after["outbox"] - before["outbox"] == 1
        if op == "approve":
            assert after["refund_events"] - before["refund_events"] == 2
        if op in ("reject", "ack"):
            assert after["refund_events"] - before["refund_events"] == 1

    def predict(self, op: str, user: str, role: str, u: MUnit, kw: dict[str, Any]) -> type[DomainError] | str:
        if op == "move":
            if not _visible(user, u):
                return NotFound
            ev = kw.get("expected_version")
            if ev is not None and ev != self.db_version(u.id):
                return StaleVersion
            if kw["to_state"] not in EDGES[u.state]:
                return IllegalTransition
            if role not in EDGES[u.state][kw["to_state"]]:
                return NotPermitted
            return "ok"
        if op in ("approve", "reject"):
            if u.refund != "pending_approval":
                return Conflict  # not inspected yet, or already decided
            if self.uid[user] in (u.inspected_by, u.override_by):
                return FourEyesViolation
            if op == "approve" and kw.get("amount") is not None and Decimal(kw["amount"]) > u.paid:
                return ValidationFailed
            return "ok"
        if op == "ack":
            return "ok" if u.refund == "released" else IllegalTransition
        raise AssertionError(op)

    def apply(self, op: str, user: str, u: MUnit, kw: dict[str, Any], result: Result) -> None:
        if op == "move":
            u.state = kw["to_state"]
            assert isinstance(result, UnitMoved) and result.state == u.state
        elif op == "approve":
            u.refund = "released"
            if kw.get("amount") is not None:
                u.amount = Decimal(kw["amount"])
            assert isinstance(result, RefundStatus) and result.status == "released"
            assert result.amount is not None and Decimal(result.amount) == u.amount
        elif op == "reject":
            u.refund, u.amount = "rejected", Decimal("0.00")
        elif op == "ack":
            u.refund = "acknowledged"

    # -- the actions --
    def receive_step(self, data) -> None:  # type: ignore[no-untyped-def]
        self.receive(data.draw(st.sampled_from(list(PRICES)), label="product"),
                     data.draw(st.sampled_from(["wh", "wh3pl"]), label="wh"),
                     data.draw(st.sampled_from(["acme", "globex", None]), label="merchant"),
                     data.draw(st.sampled_from(["worker", "worker", "super", "admin"]), label="receiver"))

    def receive(self, product: str, wh: str, merchant: str | None, user: str) -> None:
        before = counts(self.s)
        try:
            unit = receive_unit(self.s, self.w, self.products[product], self.actors[user], warehouse=self.wh[wh],
                                merchant=self.merchants[merchant])
        except DomainError as exc:
            assert self.role[user] not in FLOOR and isinstance(exc, NotPermitted), (user, exc)
            assert counts(self.s) == before
            return
        assert self.role[user] in FLOOR, f"{user} may not receive"
        refund = refund_of(self.s, unit.id)
        self.m.units.append(MUnit(id=unit.id, wh=wh, merchant=merchant, paid=refund.paid_amount, refund_id=refund.id,
                                  amount=refund.amount))
        self.s.rollback()
        after = counts(self.s)
        assert (after["ledger"] - before["ledger"], after["refunds"] - before["refunds"]) == (1, 1)

    def inspect(self, data) -> None:  # type: ignore[no-untyped-def]
        u = self.pick(data, lambda x: x.state == "received")
        if u is None:
            return
        user = data.draw(st.sampled_from(["worker", "worker2", "super", "super2", "partner", "admin"]), label="inspector")
        to_state = data.draw(st.sampled_from(STATES[1:] * 3 + ["received"]), label="disposition")
        refund_action = data.draw(st.sampled_from(ACTIONS), label="refund_action")
        pct = data.draw(st.sampled_from([0, 10, 50, 90, 100, 100]), label="pct")
        override = data.draw(st.sampled_from([None, None, None, "super", "super2"]), label="override")
        fraud = data.draw(st.integers(0, 5), label="fraud") == 0
        mover = override or user
        amount = (u.paid * pct / 100).quantize(Decimal("0.01"))
        if not _visible(user, u):
            expect: Any = NotFound
        elif to_state not in EDGES[u.state]:
            expect = IllegalTransition
        elif self.role[mover] not in EDGES[u.state][to_state]:
            expect = NotPermitted
        elif u.refund != "awaiting_inspection":
            expect = Conflict  # inspected before: its refund is settled already
        else:
            expect = "ok"
        before = counts(self.s)
        try:
            inspect_and_dispose(self.s, self.actors[user], u.id, to_state, amount=amount, refund_action=refund_action,
                                override_by=self.actors[override] if override else None, fraud_flag=fraud)
        except DomainError as exc:
            event(f"inspect: {type(exc).__name__}")
            assert isinstance(expect, type) and isinstance(exc, expect), (user, to_state, u, expect, exc)
            assert counts(self.s) == before, "refused inspection left a trace"
            return
        assert expect == "ok", (user, mover, to_state, u, expect)
        event("inspect: ok")
        assert u.refund == "awaiting_inspection"
        u.state, u.inspected_by = to_state, self.uid[user]
        u.override_by = self.uid[override] if override else None
        held = refund_action == "hold" or amount > THRESHOLD or fraud or override is not None
        if held:
            u.refund, u.amount = "pending_approval", amount
        elif refund_action == "none":
            u.refund, u.amount = "rejected", Decimal("0.00")
        else:
            u.refund, u.amount = "released", amount

    def settle_raw(self, data) -> None:  # type: ignore[no-untyped-def]
        """Try to settle (and so release) a refund without an inspection: always refused."""
        u = self.pick(data, lambda x: x.refund == "awaiting_inspection")
        if u is None:
            return
        before = counts(self.s)
        try:
            with unit_of_work(self.s):
                unit = lock_unit(self.s, u.id)
                refund = lock_refund(self.s, unit.id)
                _after, rows = settle_refund(self.actors["worker"], refund, amount=u.paid, refund_action="full", hold=[],
                                             unit_inspected_at=unit.inspected_at, inspected_by_id=None,
                                             reason="skip inspection")
                write(self.s, rows)
        except Conflict:
            assert counts(self.s) == before
            return
        raise AssertionError(f"a refund was settled without an inspection: {u}")

    def move(self, data) -> None:  # type: ignore[no-untyped-def]
        past_dock = data.draw(st.booleans(), label="past_dock")
        u = self.pick(data, lambda x: bool(EDGES[x.state]) and (x.state != "received" or not past_dock))
        if u is None:
            return
        to_state = data.draw(st.sampled_from(STATES), label="to_state")
        user = data.draw(st.sampled_from(USERS), label="mover")
        vmode = data.draw(st.sampled_from([None, None, "current", "stale"]), label="version")
        kmode = data.draw(key_mode, label="key")
        ev = None
        if vmode is not None:
            ev = self.db_version(u.id) - (1 if vmode == "stale" else 0)
        self.keyed("move", user, self.key(kmode), {"unit_id": u.id, "to_state": to_state, "reason": f"to {to_state}",
                                                   "expected_version": ev})

    def correct(self, data) -> None:  # type: ignore[no-untyped-def]
        """Mark a unit missing, or a missing one found, through the ledger's one writer."""
        u = self.pick(data, lambda x: x.state in CORRECTIONS)
        if u is None:
            return
        likely = sorted(CORRECTIONS.get(u.state, {"missing"}))
        to_state = data.draw(st.sampled_from(likely * (2 * len(STATES) // len(likely)) + STATES), label="corrected_to")
        user = data.draw(st.sampled_from(["super", "super2"] * 3 + ["worker", "partner", "admin"]), label="corrector")
        reason = data.draw(st.sampled_from(["not on its shelf"] * 3 + ["found at the count"] * 3 + [" "]), label="reason")
        if not reason.strip():
            expect: Any = ValidationFailed
        elif to_state not in CORRECTIONS.get(u.state, set()):
            expect = IllegalTransition
        elif self.role[user] != "supervisor":
            expect = NotPermitted
        else:
            expect = "ok"
        before = counts(self.s)
        try:
            with unit_of_work(self.s):
                unit = lock_unit(self.s, u.id)
                write(self.s, move_unit(self.actors[user], unit, to_state, reason=reason, correction=True))
        except DomainError as exc:
            event(f"correct: {type(exc).__name__}")
            assert isinstance(expect, type) and isinstance(exc, expect), (user, u, to_state, expect, exc)
            assert counts(self.s) == before, "a refused correction left a trace"
            return
        assert expect == "ok", (user, u.state, to_state, expect)
        event(f"correct: to {to_state}")
        self.s.expire_all()
        u.state = to_state
        after = counts(self.s)
        assert after["ledger"] - before["ledger"] == 1 and after["outbox"] - before["outbox"] == 1

    def approve(self, data) -> None:  # type: ignore[no-untyped-def]
        u = self.pick(data, lambda x: x.refund == "pending_approval")
        if u is None:
            return
        user = data.draw(st.sampled_from(["super", "super2", "super", "super2", "worker", "partner", "admin"]), label="approver")
        pct = data.draw(st.sampled_from([None, None, 0, 60, 100, 150]), label="pct")
        kmode = data.draw(key_mode, label="key")
        amount = None if pct is None else str((u.paid * pct / 100).quantize(Decimal("0.01")))
        self.keyed("approve", user, self.key(kmode), {"refund_id": u.refund_id, "reason": "checked", "amount": amount})

    def reject(self, data) -> None:  # type: ignore[no-untyped-def]
        u = self.pick(data, lambda x: x.refund == "pending_approval")
        user = data.draw(st.sampled_from(["super", "super2", "worker", "partner"]), label="rejecter")
        kmode = data.draw(key_mode, label="key")
        if u is not None:
            self.keyed("reject", user, self.key(kmode), {"refund_id": u.refund_id, "reason": "not as described"})

    def ack(self, data) -> None:  # type: ignore[no-untyped-def]
        u = self.pick(data, lambda x: x.refund == "released")
        kmode = data.draw(key_mode, label="key")
        if u is not None:
            self.keyed("ack", "integration", self.key(kmode), {"refund_id": u.refund_id, "payment_reference": "PAY-1"})

    def replay(self, data) -> None:  # type: ignore[no-untyped-def]
        if self.m.calls:
            op, user, key, kwargs = self.m.calls[data.draw(st.integers(0, len(self.m.calls) - 1), label="call")]
            self.keyed(op, user, key, kwargs, record=False)

    # -- invariants --
    def check(self) -> None:
        """The invariants, over this example's SKUs and units."""
        s, mine, ids = self.s, self.product_ids, [u.id for u in self.m.units]
        assert {k: v for k, v in ledger_sums(s).items() if k[0] in mine} == \
            {k: v for k, v in balance_table(s).items() if k[0] in mine}
        twice = s.execute(select(RefundTrigger.unit_id).join(ReturnUnit, ReturnUnit.id == RefundTrigger.unit_id)
                          .where(ReturnUnit.product_id.in_(mine))
                          .group_by(RefundTrigger.unit_id).having(func.count() > 1)).all()
        assert twice == []
        early = s.execute(select(RefundTrigger.id).join(ReturnUnit, ReturnUnit.id == RefundTrigger.unit_id)
                          .where(ReturnUnit.product_id.in_(mine), RefundTrigger.status.in_(("released", "acknowledged")),
                                 (ReturnUnit.inspected_at.is_(None)) | (RefundTrigger.inspected_at.is_(None)))).all()
        assert early == [], "a refund was released before its unit was inspected"
        states = dict(s.execute(select(ReturnUnit.id, ReturnUnit.state).where(ReturnUnit.product_id.in_(mine))).all())
        last = last_ledger_states(s)
        assert states == {u: last[u] for u in states}
        refunds = {r.unit_id: r for r in s.scalars(select(RefundTrigger).where(RefundTrigger.unit_id.in_(ids)))}
        for u in self.m.units:
            assert states[u.id] == u.state, u
            assert refunds[u.id].status == u.refund, u
            assert refunds[u.id].amount == u.amount, (u, refunds[u.id].amount)
        s.rollback()


# No shrink phase: every example costs hundreds of database round trips; the notes print the failing steps.
@settings(max_examples=25, deadline=None, database=None, phases=[Phase.explicit, Phase.generate],
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data())
def test_random_sequences_keep_the_ledger_honest(session, world, data):
    run = Runner(session, world)
    run.receive("cheap", "wh3pl", "acme", "worker")
    run.check()
    for _ in range(data.draw(st.integers(5, 25), label="steps")):
        kind = data.draw(st.sampled_from(KINDS), label="action")
        note(f"step: {kind} (units: {[(u.id, u.state, u.refund) for u in run.m.units]})")
        getattr(run, "receive_step" if kind == "receive" else kind)(data)
        run.check()
