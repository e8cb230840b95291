"""Reconciliation's screens (/reconciliation): sources and their bucket mappings, snapshot upload
and preview, the variance review with each line's units, entries and workflow, and expected
against received. Supervisors and admins; partners for their organisation's sources."""
from __future__ import annotations

from flask import Blueprint, Response, current_app, redirect, request, url_for
from werkzeug.exceptions import RequestEntityTooLarge

from app.db import db, end_transaction, utcnow
from app.errors import InvalidItems, NotFound
from app.ledger.domain import STATE_LABELS
from app.reconciliation import queries, services
from app.reconciliation.domain import COLUMNS, EXAMPLE, KINDS, RESOLUTIONS, mapping_text
from app.refunds.services import RefundPolicy
from app.web import actor, as_id, form_int, render, require
from app.web.exports import csv_download

bp = Blueprint("recon", __name__, url_prefix="/reconciliation")
PER_PAGE = 100


def _index(status: int = 200, **extra: object) -> Response:
    who = actor()
    return render("reconciliation/index.html", status=status, sources=queries.sources(db.session, who),
                  snapshots=queries.snapshots(db.session, who), trend=queries.variance_trend(db.session, who),
                  orgs=queries.partner_orgs(db.session) if who.can("manage_recon_sources") else [], columns=COLUMNS,
                  mapping_text=mapping_text, actor_is_partner=who.is_partner, max_mb=current_app.config["IMPORT_MAX_BYTES"] / 1048576, **extra)


@bp.errorhandler(RequestEntityTooLarge)
def too_large(_exc: RequestEntityTooLarge) -> Response:
    """A file over the request limit is refused before it is read: the page says why."""
    end_transaction(db.session)
    size = (request.content_length or 0) / 1048576
    limit = current_app.config["IMPORT_MAX_BYTES"] / 1048576
    return _index(413, notice=("error", f"That file is {size:.0f} MB; a snapshot file may have up to {limit:.0f} MB. "
                                        "Nothing was kept. Split it by warehouse and upload the parts one by one."))


@bp.get("/")
@require("reconcile")
def index() -> Response:
    """Sources, the upload form, the latest snapshots and the variance over time."""
    return _index()


@bp.post("/sources")
@require("manage_recon_sources")
def save_source() -> Response:
    done = services.save_source(db.session, actor(), code=request.form.get("code", ""), name=request.form.get("name", ""),
                                partner_org_id=form_int("partner_org_id"), mapping=request.form.get("mapping", ""),
                                idempotency_key=request.form.get("key"))
    return _index(notice=("success", f"Source {done.code} saved with {done.buckets} bucket(s) mapped."))


@bp.post("/snapshots")
@require("reconcile")
def upload() -> Response:
    """Keep the snapshot and show its preview; a file with bad rows: every one listed, nothing kept."""
    sent = request.files.get("file")
    try:
        done = services.upload_snapshot(
            db.session, actor(), source_id=form_int("source_id") or 0, as_of=request.form.get("as_of", ""),
            filename=sent.filename if sent else None,
            content=sent.read(current_app.config["IMPORT_MAX_BYTES"] + 1) if sent else b"",
            max_bytes=current_app.config["IMPORT_MAX_BYTES"], idempotency_key=request.form.get("key"))
    except InvalidItems as refused:
        end_transaction(db.session)
        return _index(422, notice=("error", refused.message), errors=refused.errors)
    return redirect(url_for("recon.snapshot", snapshot_id=done.id), 303)


@bp.get("/template.csv")
@require("reconcile")
def template() -> Response:
    return csv_download("dockhand-snapshot-template.csv", COLUMNS, EXAMPLE)


def _snapshot_page(snapshot_id: int, status: int = 200, **extra: object) -> Response:
    who = actor()
    found = queries.snapshot(db.session, who, snapshot_id)
    if found is None:
        raise NotFound("No such snapshot.")
    kind = request.args.get("kind") if request.args.get("kind") in KINDS else None
    open_only = request.args.get("open") == "1"
    page_no = max(as_id(request.args.get("page")) or 1, 1)
    lines, total = queries.variances(db.session, who, snapshot_id, kind=kind, open_only=open_only, page=page_no,
                                     per_page=PER_PAGE)
    return render("reconciliation/snapshot.html", "reconciliation/_variances.html", status=status, snap=found[0],
                  source_code=found.source_code, source_name=found.source_name, lines=lines, total=total, kind=kind,
                  open_only=open_only, page_no=page_no, pages=max((total + PER_PAGE - 1) // PER_PAGE, 1),
                  state_labels=STATE_LABELS, resolutions=RESOLUTIONS, hide_money=who.is_partner, **extra)


@bp.get("/snapshots/<int:snapshot_id>")
@require("reconcile")
def snapshot(snapshot_id: int) -> Response:
    """A previewed snapshot's figures and accept form, or an accepted one's variance review."""
    return _snapshot_page(snapshot_id)


@bp.post("/snapshots/<int:snapshot_id>/accept")
@require("reconcile")
def accept(snapshot_id: int) -> Response:
    done = services.accept_snapshot(db.session, actor(), snapshot_id=snapshot_id,
                                    confirm_zero_out=request.form.get("confirm_zero_out") == "1",
                                    idempotency_key=request.form.get("key"))
    return _snapshot_page(snapshot_id, notice=("success", f"Compared: {done.match} match, {done.over} over, "
                                                           f"{done.short} short."))


@bp.post("/snapshots/<int:snapshot_id>/compare")
@require("reconcile")
def compare(snapshot_id: int) -> Response:
    services.compare_snapshot(db.session, actor(), snapshot_id=snapshot_id, idempotency_key=request.form.get("key"))
    return _snapshot_page(snapshot_id, notice=("success", "Compared again: the likely causes are up to date."))


@bp.get("/snapshots/<int:snapshot_id>/variances.csv")
@require("reconcile")
def export(snapshot_id: int) -> Response:
    who = actor()
    if queries.snapshot(db.session, who, snapshot_id) is None:
        raise NotFound("No such snapshot.")
    lines, _total = queries.variances(db.session, who, snapshot_id, per_page=200_000)
    return csv_download(f"dockhand-snapshot-{snapshot_id}-variances.csv",
                        ["kind", "warehouse", "merchant", "sku", "state", "ledger", "snapshot", "difference", "value",
                         "likely cause", "owner", "resolution", "notes"],
                        [(v.kind, v.warehouse, v.merchant, v.sku, v.state, v.ledger_qty, v.snapshot_qty, v.difference,
                          "" if who.is_partner else v.value, v.cause, v.owner, v.resolution, v.notes) for v in lines])


def _variance_page(variance_id: int, status: int = 200, **extra: object) -> Response:
    who = actor()
    found = queries.variance(db.session, who, variance_id)
    if found is None:
        raise NotFound("No such variance line.")
    line, row = found
    return render("reconciliation/variance.html", "reconciliation/_variance.html", status=status, v=line, row=row,
                  hide_money=who.is_partner,
                  corrections=queries.corrections(db.session, variance_id), owners=queries.supervisors(db.session),
                  resolutions=RESOLUTIONS, state_labels=STATE_LABELS, **extra)


@bp.get("/variances/<int:variance_id>")
@require("reconcile")
def variance(variance_id: int) -> Response:
    """One line: the units behind it, the ledger's entries around T, corrections and the resolution."""
    return _variance_page(variance_id)


@bp.post("/variances/<int:variance_id>/resolve")
@require("resolve_variances")
def resolve(variance_id: int) -> Response:
    services.resolve_variance(db.session, actor(), variance_id=variance_id, owner_id=form_int("owner_id"),
                              resolution=request.form.get("resolution"), notes=request.form.get("notes"),
                              expected_version=form_int("version"), idempotency_key=request.form.get("key"))
    return _variance_page(variance_id, notice=("success", "Saved."))


@bp.post("/variances/<int:variance_id>/correct")
@require("resolve_variances")
def correct(variance_id: int) -> Response:
    done = services.correct_unit(db.session, actor(), variance_id=variance_id, lpn=request.form.get("lpn", ""),
                                 found=request.form.get("direction") == "found", reason=request.form.get("reason"),
                                 threshold=RefundPolicy.from_config(current_app.config).approval_threshold,
                                 idempotency_key=request.form.get("key"))
    said = (f"Unit {done.lpn} is now {STATE_LABELS[done.unit_state]} in the ledger." if done.status == "applied" else
            f"Unit {done.lpn}: its value is above the threshold, so a second supervisor approves this correction.")
    return _variance_page(variance_id, notice=("success", said))


@bp.post("/corrections/<int:correction_id>/decide")
@require("resolve_variances")
def decide(correction_id: int) -> Response:
    done = services.decide_correction(db.session, actor(), correction_id=correction_id,
                                      approve=request.form.get("decision") == "approve", reason=request.form.get("reason"),
                                      idempotency_key=request.form.get("key"))
    variance_id = as_id(request.form.get("variance_id"))
    said = f"Correction {done.status}: unit {done.lpn} is {STATE_LABELS[done.unit_state]}."
    if variance_id is None:
        return redirect(url_for("recon.index"), 303)
    return _variance_page(variance_id, notice=("success", said))


@bp.get("/expected")
@require("reconcile")
def expected() -> Response:
    """Expected against received: counts and values per bucket, one bucket's rows below."""
    who, now = actor(), utcnow()
    hours = current_app.config.get("RECON_NOT_INSPECTED_HOURS", 48)
    code = request.args.get("bucket")
    buckets = queries.expected_vs_received(db.session, who, now, hours)
    if code not in {b.code for b in buckets}:
        code = None
    rows = queries.expected_rows(db.session, who, code, now, hours) if code else []
    return render("reconciliation/expected.html", buckets=buckets, code=code, rows=rows,
                  units=code in ("not_inspected", "wrong_warehouse"), hide_money=who.is_partner)


@bp.get("/expected.csv")
@require("reconcile")
def expected_csv() -> Response:
    """One bucket's rows of expected against received, as CSV (partners: without values)."""
    who, code = actor(), request.args.get("bucket", "")
    if code not in queries.EXPECTED_LABELS:
        raise NotFound("No such bucket.")
    rows = queries.expected_rows(db.session, who, code, utcnow(), current_app.config.get("RECON_NOT_INSPECTED_HOURS", 48),
                                 limit=100_000)
    return csv_download(f"dockhand-expected-{code}.csv", ["reference", "warehouse", "value", "since"],
                        [(r[1], r[2], "" if who.is_partner else r[3], r[4]) for r in rows])
