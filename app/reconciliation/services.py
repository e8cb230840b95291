"""Reconciliation's use cases: set a source's bucket mapping, take a snapshot (a CSV upload kept for
its preview, or an API call), accept it and compare it with the ledger at its time T, resolve a
variance line, and correct a lost or found unit through the ledger (`missing` and back), with a
second supervisor above the value threshold. Each owns its transaction (run_idempotent)."""
from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session

from app.auth.roles import SYSTEM, Actor
from app.db import as_utc, utcnow
from app.errors import Conflict, FourEyesViolation, InvalidItems, NotFound, NotPermitted, StaleVersion, ValidationFailed, require_reason
from app.intake.domain import check_upload, upload_name
from app.ledger.domain import MISSING, ON_HAND, STATE_LABELS
from app.ledger.idempotency import Result, run_idempotent
from app.ledger.models import ReturnUnit
from app.ledger.services import lock_unit
from app.ledger.writer import audit_row, event_row, move_unit
from app.reconciliation import queries
from app.reconciliation.domain import (MATCH, OVER, RESOLUTIONS, SHORT, Key, MappingError, ReadSnapshot,
                                       as_of as parse_as_of, compare, guard_refuses, likely_cause, parse_csv, parse_mapping,
                                       read_rows, roll_forward, zeroed_items)
from app.reconciliation.models import ReconCorrection, ReconSnapshot, ReconSnapshotLine, ReconSource, ReconVariance
from app.rows import expire, write
from app.settings.queries import threshold_for_rma

SNAPSHOT_MAX_BYTES = 64 * 1024 * 1024
FUTURE_SLACK = timedelta(minutes=5)


def _may(actor: Actor, permission: str, what: str) -> None:
    if not actor.can(permission) and not (actor.role == SYSTEM.role and permission == "reconcile"):
        raise NotPermitted(f"Your role may not {what}.")


# ---- sources -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SourceSaved(Result):
    id: int
    code: str
    buckets: int


def save_source(session: Session, actor: Actor, *, code: str, name: str, partner_org_id: int | None, mapping: str,
                idempotency_key: str | None) -> SourceSaved:
    """Add a source, or change its name, organisation and bucket mapping (by code). Audited."""
    _may(actor, "manage_recon_sources", "set up reconciliation sources")
    code, name = (code or "").strip().upper(), " ".join((name or "").split())
    if not code or len(code) > 64 or not code.replace("-", "").replace("_", "").isalnum():
        raise ValidationFailed("Give the source a code: 1-64 letters, digits, '-' or '_'.")
    if not name or len(name) > 120:
        raise ValidationFailed("Give the source a name (up to 120 characters).")
    try:
        buckets = parse_mapping(mapping or "")
    except MappingError as exc:
        raise ValidationFailed(str(exc)) from exc
    params = {"code": code, "name": name, "partner_org_id": partner_org_id, "buckets": buckets}

    def work() -> SourceSaved:
        from app.catalog.models import PartnerOrg

        if partner_org_id is not None and session.get(PartnerOrg, partner_org_id) is None:
            raise ValidationFailed("No such partner organisation.")
        row = session.scalars(select(ReconSource).where(ReconSource.code == code).with_for_update()).first()
        before = None if row is None else {"name": row.name, "partner_org_id": row.partner_org_id, "buckets": row.buckets}
        if row is None:
            row = ReconSource(code=code, name=name, partner_org_id=partner_org_id, buckets=buckets)
            session.add(row)
        else:
            row.name, row.partner_org_id, row.buckets = name, partner_org_id, buckets
        session.flush()
        write(session, [audit_row(actor, "recon.source_saved", "recon_source", row.id,
                                  details={"before": before, "after": params})])
        return SourceSaved(row.id, code, len(buckets))

    return run_idempotent(session, actor, idempotency_key, "recon_save_source", params, work, result_type=SourceSaved)


# ---- snapshots: read, checked against the catalog, kept -------------------------------------------

def _source_for(session: Session, actor: Actor, source_id: int | None = None, code: str | None = None) -> ReconSource:
    found = (queries.source(session, actor, source_id) if source_id is not None
             else queries.source_by_code(session, actor, (code or "").strip().upper()))
    if found is None:
        raise NotFound("No such source (partners: only their organisation's sources).")
    return found


def _as_of(text: str | datetime) -> datetime:
    try:
        when = text if isinstance(text, datetime) else parse_as_of(text)
    except ValueError as exc:
        raise ValidationFailed(str(exc)) from exc
    when = as_utc(when) or when
    if when > utcnow() + FUTURE_SLACK:
        raise ValidationFailed("The snapshot's time (as of) is in the future: a count is of the past.")
    return when


def _refuse(read: ReadSnapshot) -> None:
    """Line-numbered refusal: nothing of the snapshot is kept."""
    if read.error_count:
        shown = "; ".join(f"line {e.line}{' ' + e.column if e.column else ''}: {e.message}" for e in read.errors[:3])
        raise InvalidItems(f"The snapshot has {read.error_count} bad row(s), nothing was kept: {shown}"
                           f"{' …' if read.error_count > 3 else ''}",
                           [{"field": f"line {e.line}" + (f" {e.column}" if e.column else ""), "message": e.message}
                            for e in read.errors])


def _resolved(session: Session, actor: Actor, source: ReconSource, read: ReadSnapshot) -> list[dict[str, Any]]:
    """The rows as table rows (ids); refused (every bad row: as read, and naming what is not there or
    not the actor's) when any is bad."""
    rows = read.rows
    warehouses, merchants, products = queries.codes(session, {r.warehouse for r in rows},
                                                    {r.merchant for r in rows if r.merchant}, {r.sku for r in rows})
    org = actor.partner_org_id if actor.is_partner else source.partner_org_id
    served = queries.serves(session, org, merchants.values()) if actor.is_partner and org is not None else None
    out: list[dict[str, Any]] = []
    for r in rows:
        wh, merchant, product = warehouses.get(r.warehouse), merchants.get(r.merchant or ""), products.get(r.sku)
        if wh is None:
            read.fail(r.line, "warehouse", f"no warehouse {r.warehouse}")
        elif org is not None and wh[1] != org:
            read.fail(r.line, "warehouse", f"{r.warehouse} is not a warehouse of this source's organisation")
        if r.merchant and merchant is None:
            read.fail(r.line, "merchant", f"no merchant {r.merchant}")
        if product is None:
            read.fail(r.line, "sku", f"no SKU {r.sku} in the catalog")
            continue
        merchant_id = merchant if r.merchant else product[1]
        if r.merchant and merchant is not None and product[1] is not None and product[1] != merchant:
            read.fail(r.line, "sku", f"{r.sku} is not a product of merchant {r.merchant}")
        if merchant_id is not None and (not actor.serves(merchant_id) or (served is not None and merchant_id not in served)):
            read.fail(r.line, "merchant", f"{r.merchant or 'the SKU’s merchant'} is not a merchant you serve")
        if wh is not None:
            out.append({"line": r.line, "warehouse_id": wh[0], "merchant_id": merchant_id, "product_id": product[0],
                        "bucket": r.bucket, "state": r.state, "quantity": r.quantity})
    read.errors.sort(key=lambda e: e.line)
    _refuse(read)
    return out


def _counts(lines: Sequence[dict[str, Any]]) -> dict[Key, int]:
    counted: dict[Key, int] = defaultdict(int)
    for ln in lines:
        counted[(ln["warehouse_id"], ln["merchant_id"], ln["product_id"], ln["state"])] += ln["quantity"]
    return counted


def _mapped(ledger: dict[Key, int], source: ReconSource) -> dict[Key, int]:
    """The ledger's items in the states the source counts (those its buckets map to): a source
    that has no bucket for disposed units says nothing about them."""
    states = set(source.buckets.values())
    return {k: n for k, n in ledger.items() if k[3] in states}


def _preview(session: Session, source: ReconSource, t: datetime, lines: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """What the preview says: rows, units per state, and the zero-out guard's figures."""
    counted = _counts(lines)
    ledger = _mapped(queries.balance_at(session, t, {k[0] for k in counted}), source)
    held = len({k[:3] for k, v in ledger.items() if v > 0 and k[3] in ON_HAND})
    zeroed = zeroed_items(ledger, counted)
    per_state: dict[str, int] = defaultdict(int)
    for k, v in counted.items():
        per_state[k[3]] += v
    return {"rows": len(lines), "units": sum(counted.values()), "per_state": dict(sorted(per_state.items())),
            "warehouses": len({k[0] for k in counted}), "held": held, "zeroed": zeroed,
            "guard": guard_refuses(zeroed, held)}


def _keep(session: Session, actor: Actor, source: ReconSource, t: datetime, origin: str, filename: str | None,
          digest: str, lines: list[dict[str, Any]]) -> ReconSnapshot:
    preview = _preview(session, source, t, lines)
    snap = ReconSnapshot(source_id=source.id, as_of=t, origin=origin, filename=filename, sha256=digest, status="previewed",
                         rows=len(lines), units=preview["units"], preview=preview, created_by_name=actor.name)
    session.add(snap)
    session.flush()
    for i in range(0, len(lines), 5000):
        session.execute(insert(ReconSnapshotLine.__table__), [dict(ln, snapshot_id=snap.id) for ln in lines[i:i + 5000]])
    write(session, [audit_row(actor, "recon.snapshot_received", "recon_snapshot", snap.id,
                              details={"source": source.code, "as_of": t.isoformat(), "origin": origin, "rows": len(lines),
                                       "units": preview["units"], "sha256": digest})])
    return snap


@dataclass(frozen=True)
class SnapshotKept(Result):
    """A snapshot kept for its preview: its figures and whether the zero-out guard will ask."""

    id: int
    rows: int
    units: int
    zeroed: int
    guard: bool


def upload_snapshot(session: Session, actor: Actor, *, source_id: int, as_of: str, filename: str | None, content: bytes,
                    max_bytes: int = SNAPSHOT_MAX_BYTES, idempotency_key: str | None) -> SnapshotKept:
    """Keep an uploaded snapshot CSV for its preview. A file with any bad row (unknown column,
    warehouse, merchant or SKU; an unmapped bucket; a negative quantity; a repeated row; not
    UTF-8) is refused whole, every bad row by line number: nothing is kept."""
    _may(actor, "reconcile", "send stock snapshots")
    check_upload(content, max_bytes, limit="a snapshot file may have", split="Split it by warehouse.")
    t = _as_of(as_of)
    source = _source_for(session, actor, source_id)
    digest = hashlib.sha256(content).hexdigest()
    name = upload_name(filename, "snapshot.csv")
    params = {"source_id": source.id, "as_of": t.isoformat(), "sha256": digest}

    def work() -> SnapshotKept:
        read = parse_csv(content, source.buckets)
        lines = _resolved(session, actor, source, read)
        snap = _keep(session, actor, source, t, "csv", name, digest, lines)
        return SnapshotKept(snap.id, snap.rows, snap.units, snap.preview["zeroed"], snap.preview["guard"])

    return run_idempotent(session, actor, idempotency_key, "recon_upload", params, work, result_type=SnapshotKept)


# ---- the comparison ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Compared(Result):
    """A comparison's summary: its lines by kind, the units and value each way, the roll-forward."""

    snapshot_id: int
    source: str
    as_of: str
    lines: int
    match: int
    over: int
    short: int
    units_over: int
    units_short: int
    value_over: str | None  # money: None on the answer to a partner's key
    value_short: str | None
    opening: int
    received: int
    moved_out: int
    closing: int
    roll_forward_holds: bool
    snapshot_on_hand: int


def _cell_moves(entries: Sequence[queries.EntryNear], t: datetime) -> tuple[dict[Key, int], dict[Key, int], dict[Key, list[Any]]]:
    """Per item: the net change posted after T, the net change in the hours before T, and the entries."""
    after: dict[Key, int] = defaultdict(int)
    before: dict[Key, int] = defaultdict(int)
    near: dict[Key, list[Any]] = defaultdict(list)
    for e in entries:
        at = as_utc(e.at) or e.at
        side = after if at > t else before
        for state, delta in ((e.to_state, 1), (e.from_state, -1)):
            if state is None:
                continue
            key = (e.warehouse_id, e.merchant_id, e.product_id, state)
            side[key] += delta
            near[key].append({"id": e.id, "at": at.isoformat(), "lpn": e.lpn, "from": e.from_state, "to": e.to_state,
                              "reason": e.reason, "after_t": at > t})
    return after, before, near


def _compare(session: Session, actor: Actor, snap: ReconSnapshot, source: ReconSource) -> Compared:
    """Compare a snapshot with the ledger at its T: write (or refresh) its variance lines, the
    summary, the audit entry and the `reconciliation.completed` event."""
    t = as_utc(snap.as_of) or snap.as_of
    sl = ReconSnapshotLine.__table__
    lines = [dict(r._mapping) for r in session.execute(
        select(sl.c.warehouse_id, sl.c.merchant_id, sl.c.product_id, sl.c.state, sl.c.quantity)
        .where(sl.c.snapshot_id == snap.id)).all()]
    counted = _counts(lines)
    warehouses = {k[0] for k in counted}
    everything = queries.balance_at(session, t, warehouses)
    compared = compare(_mapped(everything, source), counted)
    differing = [ln for ln in compared if ln.kind != MATCH]
    products = {ln.key[2] for ln in differing}
    units = queries.units_at(session, t, warehouses, products) if products else {}
    after, before, near = _cell_moves(queries.entries_around(session, t, warehouses, products), t) if products else ({}, {}, {})
    values = queries.product_values(session, {ln.key[2] for ln in compared})
    rows = []
    for ln in compared:
        w, m, p, s = ln.key
        cause, details = "", {}
        if ln.kind != MATCH:
            cause = likely_cause(ln.ledger_qty, ln.snapshot_qty, after.get(ln.key, 0), before.get(ln.key, 0))
            lpns = units.get(ln.key, [])
            details = {"units": lpns[:queries.UNITS_KEPT], "unit_count": len(lpns), "after_t": after.get(ln.key, 0),
                       "before_t": before.get(ln.key, 0), "entries": near.get(ln.key, [])[-queries.ENTRIES_KEPT:]}
        rows.append({"snapshot_id": snap.id, "warehouse_id": w, "merchant_id": m, "product_id": p, "state": s,
                     "ledger_qty": ln.ledger_qty, "snapshot_qty": ln.snapshot_qty, "kind": ln.kind, "cause": cause,
                     "details": details, "version": 1})
    v = ReconVariance.__table__
    if snap.compared_at is None:
        for i in range(0, len(rows), 5000):
            session.execute(insert(ReconVariance.__table__), rows[i:i + 5000])
    else:  # T is past: the ledger at T is what it was; what is around T may have grown
        ids = {(r.warehouse_id, r.merchant_id, r.product_id, r.state): r.id for r in session.execute(
            select(v.c.id, v.c.warehouse_id, v.c.merchant_id, v.c.product_id, v.c.state).where(v.c.snapshot_id == snap.id))}
        for r in rows:
            if r["kind"] != MATCH and (key := (r["warehouse_id"], r["merchant_id"], r["product_id"], r["state"])) in ids:
                session.execute(update(v).where(v.c.id == ids[key]).values(cause=r["cause"], details=r["details"]))
    previous = queries.previous_snapshot(session, source.id, snap.as_of)
    opened_at = as_utc(previous.as_of) if previous is not None else None
    on_hand = lambda counts: sum(n for k, n in counts.items() if k[3] in ON_HAND)  # noqa: E731
    opening = on_hand(queries.balance_at(session, opened_at, warehouses)) if opened_at is not None else 0
    check = roll_forward(opening, queries.moves_between(session, opened_at, t, warehouses), on_hand(everything))
    by_kind = {k: [ln for ln in compared if ln.kind == k] for k in (MATCH, OVER, SHORT)}
    value = lambda kind: sum((abs(ln.difference) * values.get(ln.key[2], Decimal(0)) for ln in by_kind[kind]), Decimal(0))  # noqa: E731
    result = Compared(snap.id, source.code, t.isoformat(), len(compared), len(by_kind[MATCH]), len(by_kind[OVER]),
                      len(by_kind[SHORT]), sum(ln.difference for ln in by_kind[OVER]),
                      -sum(ln.difference for ln in by_kind[SHORT]), f"{value(OVER):.2f}", f"{value(SHORT):.2f}",
                      check.opening, check.received, check.moved_out, check.closing, check.holds, on_hand(counted))
    summary = {k: val for k, val in asdict(result).items() if k != "replayed"}
    snap.status, snap.summary, snap.compared_at = "accepted", summary, utcnow()
    session.flush()
    write(session, [audit_row(actor, "recon.compared", "recon_snapshot", snap.id, details=summary),
                    event_row("reconciliation.completed", "recon_snapshot", snap.id, summary)])
    return result


def accept_snapshot(session: Session, actor: Actor, *, snapshot_id: int, confirm_zero_out: bool,
                    idempotency_key: str | None) -> Compared:
    """Accept a previewed snapshot and compare it with the ledger at its T. A snapshot that would
    zero out many items is refused unless `confirm_zero_out`."""
    _may(actor, "reconcile", "accept stock snapshots")
    params = {"snapshot_id": snapshot_id, "confirm_zero_out": bool(confirm_zero_out)}

    def work() -> Compared:
        snap = _locked_snapshot(session, actor, snapshot_id)
        if snap.status == "accepted":
            raise Conflict("This snapshot was accepted already: its comparison is on its page.")
        _guard(snap.preview, confirm_zero_out)
        return _compare(session, actor, snap, session.get(ReconSource, snap.source_id))

    return run_idempotent(session, actor, idempotency_key, "recon_accept", params, work, result_type=Compared)


def _guard(preview: dict[str, Any], confirmed: bool) -> None:
    if preview.get("guard") and not confirmed:
        raise Conflict(f"This snapshot counts none of {preview['zeroed']} of the {preview['held']} items the ledger "
                       "holds at its time: accepting it would zero them out. Check that the file is whole; confirm to "
                       "accept it anyway.")


def _locked_snapshot(session: Session, actor: Actor, snapshot_id: int) -> ReconSnapshot:
    found = queries.snapshot(session, actor, snapshot_id)
    if found is None:
        raise NotFound("No such snapshot.")
    return session.scalars(select(ReconSnapshot).where(ReconSnapshot.id == snapshot_id).with_for_update()
                           .execution_options(populate_existing=True)).one()


def compare_snapshot(session: Session, actor: Actor, *, snapshot_id: int, idempotency_key: str | None) -> Compared:
    """Compare an accepted snapshot again (the timer, or a supervisor): the ledger at T is what it
    was, so the lines keep their owners and resolutions; their likely causes are refreshed."""
    _may(actor, "reconcile", "compare stock snapshots")

    def work() -> Compared:
        snap = _locked_snapshot(session, actor, snapshot_id)
        if snap.status != "accepted":
            raise Conflict("Accept the snapshot first (its preview is on its page).")
        return _compare(session, actor, snap, session.get(ReconSource, snap.source_id))

    return run_idempotent(session, actor, idempotency_key, "recon_compare", {"snapshot_id": snapshot_id}, work,
                          result_type=Compared)


def compare_newest(session: Session, actor: Actor, *, key_prefix: str) -> list[Compared]:
    """The timer's run: compare each source's newest accepted snapshot, each in its own transaction
    (keyed `key_prefix:snapshot id`), each publishing `reconciliation.completed`."""
    return [compare_snapshot(session, actor, snapshot_id=snap.id, idempotency_key=f"{key_prefix}:{snap.id}")
            for snap in queries.newest_snapshots(session)]


@dataclass(frozen=True)
class RowIn:
    """One row of a snapshot sent through the API."""

    warehouse: str
    merchant: str | None
    sku: str
    bucket: str
    quantity: int


def put_snapshot(session: Session, actor: Actor, *, source: str, as_of: datetime | str, rows: Sequence[RowIn],
                 confirm_zero_out: bool, idempotency_key: str | None) -> Compared:
    """The API's snapshot: checked like a file (every bad row by its place, item 1 first), kept,
    accepted and compared in one transaction; nothing kept when refused."""
    _may(actor, "reconcile", "send stock snapshots")
    t = _as_of(as_of)
    found = _source_for(session, actor, code=source)
    body = [asdict(r) for r in rows]
    digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
    params = {"source": found.code, "as_of": t.isoformat(), "sha256": digest, "confirm_zero_out": bool(confirm_zero_out)}

    def work() -> Compared:
        read = read_rows(((n, {k: "" if v is None else str(v) for k, v in r.items()}) for n, r in enumerate(body, 1)),
                         found.buckets, ReadSnapshot())
        lines = _resolved(session, actor, found, read)
        snap = _keep(session, actor, found, t, "api", None, digest, lines)
        _guard(snap.preview, confirm_zero_out)
        return _compare(session, actor, snap, found)

    return run_idempotent(session, actor, idempotency_key, "recon_put_snapshot", params, work, result_type=Compared)


# ---- the variance workflow ---------------------------------------------------------------------------

@dataclass(frozen=True)
class VarianceResolved(Result):
    id: int
    owner_id: int | None
    resolution: str | None
    version: int


def _locked_variance(session: Session, actor: Actor, variance_id: int) -> ReconVariance:
    if queries.variance(session, actor, variance_id) is None:
        raise NotFound("No such variance line.")
    return session.scalars(select(ReconVariance).where(ReconVariance.id == variance_id).with_for_update()
                           .execution_options(populate_existing=True)).one()


def resolve_variance(session: Session, actor: Actor, *, variance_id: int, owner_id: int | None, resolution: str | None,
                     notes: str | None, expected_version: int | None, idempotency_key: str | None) -> VarianceResolved:
    """Give a variance line its owner, resolution and notes (supervisors). A lost or found unit
    resolution needs the unit corrected through the ledger first. Audited and published."""
    _may(actor, "resolve_variances", "resolve reconciliation variances")
    resolution = (resolution or "").strip() or None
    notes = (notes or "").strip() or None
    if resolution is not None and resolution not in RESOLUTIONS:
        raise ValidationFailed(f"Choose a resolution: {', '.join(RESOLUTIONS)}.")
    if notes is not None and len(notes) > 2000:
        raise ValidationFailed("Keep the notes under 2000 characters.")
    params = {"variance_id": variance_id, "owner_id": owner_id, "resolution": resolution, "notes": notes,
              "expected_version": expected_version}

    def work() -> VarianceResolved:
        from app.auth.models import User

        row = _locked_variance(session, actor, variance_id)
        if expected_version is not None and row.version != expected_version:
            raise StaleVersion("Somebody else changed this variance line just now. Nothing was changed: look again.")
        if owner_id is not None:
            owner = session.get(User, owner_id)
            if owner is None or owner.role != "supervisor" or not owner.active:
                raise ValidationFailed("The owner must be an active supervisor.")
        if row.kind == MATCH and resolution is not None:
            raise ValidationFailed("This line matches: there is nothing to resolve.")
        if resolution in ("lost_unit", "found_unit"):
            to = MISSING if resolution == "lost_unit" else None
            applied = session.scalars(select(ReconCorrection.to_state).where(ReconCorrection.variance_id == row.id,
                                                                             ReconCorrection.status == "applied")).all()
            if not any((s == MISSING) == (to == MISSING) for s in applied):
                raise ValidationFailed(f"Correct the unit through the ledger first ({'mark it missing' if to else 'mark it found'}): "
                                       "a lost or found unit is never resolved by a note alone.")
        before = {"owner_id": row.owner_id, "resolution": row.resolution, "notes": row.notes}
        row.owner_id, row.resolution, row.notes, row.version = owner_id, resolution, notes, row.version + 1
        if resolution is not None:
            row.resolved_by_id, row.resolved_at = actor.id, utcnow()
        session.flush()
        after = {"owner_id": owner_id, "resolution": resolution, "notes": notes}
        write(session, [audit_row(actor, "recon.variance_resolved", "recon_variance", row.id, warehouse_id=row.warehouse_id,
                                  reason=notes, details={"before": before, "after": after}),
                        event_row("reconciliation.variance_resolved", "recon_variance", row.id,
                                  {"variance_id": row.id, "snapshot_id": row.snapshot_id, "warehouse_id": row.warehouse_id,
                                   "product_id": row.product_id, "state": row.state, "kind": row.kind,
                                   "difference": row.snapshot_qty - row.ledger_qty, **after})])
        return VarianceResolved(row.id, owner_id, resolution, row.version)

    return run_idempotent(session, actor, idempotency_key, "recon_resolve", params, work, result_type=VarianceResolved)


@dataclass(frozen=True)
class Corrected(Result):
    """A correction: `applied` (the unit moved in the ledger) or `pending` (a second supervisor
    approves: the unit's value is above the threshold) or `rejected`."""

    id: int
    lpn: str
    to_state: str
    status: str
    unit_state: str


def _apply(session: Session, actor: Actor, corr: ReconCorrection, unit: Any, key: str | None) -> list[Any]:
    rows = move_unit(actor, unit, corr.to_state, reason=corr.reason, correction=True, idempotency_key=key,
                     action="unit.found" if unit.state == MISSING else "unit.missing",
                     details={"correction_id": corr.id, "variance_id": corr.variance_id})
    corr.status, corr.decided_by_id, corr.decided_at = "applied", actor.id, utcnow()
    return rows


def _published(corr: ReconCorrection, lpn: str) -> Any:
    return event_row("reconciliation.unit_corrected", "recon_correction", corr.id,
                     {"correction_id": corr.id, "variance_id": corr.variance_id, "unit_id": corr.unit_id, "lpn": lpn,
                      "to_state": corr.to_state, "status": corr.status, "reason": corr.reason})


def correct_unit(session: Session, actor: Actor, *, variance_id: int, lpn: str, found: bool, reason: str | None,
                 threshold: Decimal, idempotency_key: str | None) -> Corrected:
    """Mark a unit of a variance line's item missing (lost) or, `found`, a missing unit back into the
    line's state: through the ledger (move_unit), supervisors only, with a reason. Above `threshold`
    (the unit's value; the console's refund approval threshold for its return when one is stored,
    as app.settings.queries.threshold_for_rma says) the correction waits for a second supervisor."""
    _may(actor, "resolve_variances", "mark units missing or found")
    reason = require_reason(reason)
    lpn = (lpn or "").strip().upper()
    params = {"variance_id": variance_id, "lpn": lpn, "found": bool(found), "reason": reason}

    def work() -> Corrected:
        line = _locked_variance(session, actor, variance_id)
        unit_id = session.scalar(select(ReturnUnit.id).where(ReturnUnit.lpn == lpn))
        if unit_id is None:
            raise NotFound(f"No unit {lpn}.")
        unit = lock_unit(session, unit_id)
        if (unit.warehouse_id, unit.product_id) != (line.warehouse_id, line.product_id):
            raise ValidationFailed(f"Unit {lpn} is not of this line's SKU and warehouse.")
        if found and unit.state != MISSING:
            raise Conflict(f"Unit {lpn} is {STATE_LABELS[unit.state]}, not missing: there is nothing to find.")
        if not found and unit.state != line.state:
            raise Conflict(f"Unit {lpn} is {STATE_LABELS[unit.state]}, not {STATE_LABELS.get(line.state, line.state)} as "
                           "this line: only a unit of the line's state is marked missing from it.")
        to_state = line.state if found else MISSING
        if session.scalar(select(ReconCorrection.id).where(ReconCorrection.unit_id == unit.id,
                                                           ReconCorrection.status == "pending")) is not None:
            raise Conflict(f"Unit {lpn} has a correction waiting for a second supervisor already.")
        from app.catalog.models import Product

        value, stored = session.execute(select(
            func.coalesce(unit.paid_price, select(Product.unit_value).where(Product.id == unit.product_id).scalar_subquery()),
            threshold_for_rma(unit.rma_id))).one()
        limit = Decimal(stored) if stored is not None else threshold
        move_unit(actor, unit, to_state, reason=reason, correction=True)  # the edge and role, checked before anything
        corr = ReconCorrection(variance_id=line.id, unit_id=unit.id, to_state=to_state, reason=reason, status="pending",
                               requested_by_id=actor.id)
        session.add(corr)
        session.flush()
        rows = [audit_row(actor, "recon.correction_requested", "recon_correction", corr.id, warehouse_id=unit.warehouse_id,
                          reason=reason, details={"lpn": lpn, "to_state": to_state, "value": str(value),
                                                  "threshold": str(limit)})]
        if Decimal(value or 0) <= limit:
            rows += _apply(session, actor, corr, unit, idempotency_key)
        session.flush()
        write(session, [*rows, _published(corr, lpn)])
        expire(session, (ReturnUnit, unit.id))
        return Corrected(corr.id, lpn, to_state, corr.status, to_state if corr.status == "applied" else unit.state)

    return run_idempotent(session, actor, idempotency_key, "recon_correct", params, work, result_type=Corrected)


def decide_correction(session: Session, actor: Actor, *, correction_id: int, approve: bool, reason: str | None,
                      idempotency_key: str | None) -> Corrected:
    """A second supervisor approves (the unit moves in the ledger) or rejects a pending correction.
    The supervisor who asked for it may not decide it (four-eyes)."""
    _may(actor, "resolve_variances", "approve corrections")
    reason = require_reason(reason)
    params = {"correction_id": correction_id, "approve": bool(approve), "reason": reason}

    def work() -> Corrected:
        corr = session.scalars(select(ReconCorrection).where(ReconCorrection.id == correction_id).with_for_update()
                               .execution_options(populate_existing=True)).first()
        if corr is None or queries.variance(session, actor, corr.variance_id) is None:
            raise NotFound("No such correction.")
        if corr.status != "pending":
            raise Conflict(f"This correction was {corr.status} already.")
        if corr.requested_by_id == actor.id:
            raise FourEyesViolation("You asked for this correction: another supervisor must decide it.")
        unit = lock_unit(session, corr.unit_id)
        rows: list[Any] = []
        if approve:
            rows = _apply(session, actor, corr, unit, idempotency_key)
        else:
            corr.status, corr.decided_by_id, corr.decided_at = "rejected", actor.id, utcnow()
        session.flush()
        write(session, [*rows, audit_row(actor, f"recon.correction_{corr.status}", "recon_correction", corr.id,
                                         warehouse_id=unit.warehouse_id, reason=reason,
                                         details={"lpn": unit.lpn, "to_state": corr.to_state}),
                        _published(corr, unit.lpn)])
        expire(session, (ReturnUnit, unit.id))
        return Corrected(corr.id, unit.lpn, corr.to_state, corr.status,
                         corr.to_state if corr.status == "applied" else unit.state)

    return run_idempotent(session, actor, idempotency_key, "recon_decide", params, work, result_type=Corrected)

