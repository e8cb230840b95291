"""The CSV import in the admin console (/admin/import): upload a file of products, orders or
returns, see the preview (every bad row by line number and reason), apply it. Admins only."""
from __future__ import annotations


from flask import Blueprint, Response, current_app, redirect, request, url_for
from werkzeug.exceptions import RequestEntityTooLarge

from app.db import db, end_transaction
from app.errors import NotFound
from app.intake import queries
from app.intake.domain import COLUMNS, KIND_LABELS, KINDS, NOUNS, POLICY, template_rows
from app.intake.services import apply_import, upload_import
from app.web.exports import csv_download
from app.web import actor, render, require

bp = Blueprint("imports", __name__, url_prefix="/admin/import")


def _index(status: int = 200, chosen: str | None = None, **extra: object) -> Response:
    return render("intake/index.html", status=status, kinds=KINDS, labels=KIND_LABELS, columns=COLUMNS, policy=POLICY,
                  recent=queries.recent_imports(db.session), max_mb=current_app.config["IMPORT_MAX_BYTES"] / 1048576,
                  chosen=chosen or request.args.get("kind", "rmas"), **extra)


@bp.errorhandler(RequestEntityTooLarge)
def too_large(_exc: RequestEntityTooLarge) -> Response:
    """A file over the request limit is refused before it is read: the import page says why."""
    end_transaction(db.session)
    size = (request.content_length or 0) / 1048576
    limit = current_app.config["IMPORT_MAX_BYTES"] / 1048576
    return _index(413, "rmas", notice=("error", f"That file is {size:.0f} MB; the import takes files up to {limit:.0f} MB. "
                                        "Nothing was kept. Split the file and upload the parts one by one."))


@bp.get("/")
@require("admin")
def index() -> Response:
    """The upload form, a template for each kind of file, and the latest imports."""
    return _index()


@bp.post("/")
@require("admin")
def upload() -> Response:
    """Keep the file and show its preview (a redirect: reloading the preview sends nothing again)."""
    sent = request.files.get("file")
    done = upload_import(db.session, actor(), kind=request.form.get("kind", ""), filename=sent.filename if sent else None,
                         content=sent.read(current_app.config["IMPORT_MAX_BYTES"] + 1) if sent else b"",
                         max_bytes=current_app.config["IMPORT_MAX_BYTES"], idempotency_key=request.form.get("key"))
    return redirect(url_for("imports.preview", import_id=done.id), 303)


def _preview(import_id: int, status: int = 200, **extra: object) -> Response:
    run = queries.import_run(db.session, import_id)
    if run is None:
        raise NotFound("No such import.")
    again = queries.applied_before(db.session, run.sha256, run.kind, but=run.id) if run.status == "previewed" else None
    return render("intake/preview.html", "intake/_preview.html", status=status, run=run, labels=KIND_LABELS,
                  policy=POLICY[run.kind], noun=NOUNS[run.kind], again=again, **extra)


@bp.get("/<int:import_id>")
@require("admin")
def preview(import_id: int) -> Response:
    """What the file holds: counts, every bad row, what applying it will do."""
    return _preview(import_id)


@bp.post("/<int:import_id>/apply")
@require("admin")
def apply(import_id: int) -> Response:
    """Apply the file; a second Apply (double-submitted, or a reload) answers the first's result."""
    done = apply_import(db.session, actor(), import_id=import_id)
    said = (f"Applied: {done.created} created, {done.updated} updated, {done.unchanged} unchanged, "
            f"{done.left_out} left out (bad rows), {done.refused} refused while applying.")
    if done.replayed:
        said = "This file was applied already: the repeat changed nothing. " + said
    return _preview(import_id, notice=("success" if not done.refused else "warning", said))


@bp.get("/<int:import_id>/errors.csv")
@require("admin")
def errors_csv(import_id: int) -> Response:
    """The bad rows (the preview's, then the apply's) as CSV: cells a spreadsheet would run as a
    formula are neutralised."""
    run = queries.import_run(db.session, import_id)
    if run is None:
        raise NotFound("No such import.")
    rows = [(line, column, message, when)
            for when, errors in (("preview", run.preview.get("errors", [])), ("apply", (run.result or {}).get("errors", [])))
            for line, column, message in errors]
    return csv_download(f"dockhand-import-{import_id}-errors.csv", ["line", "column", "problem", "when"], rows)


@bp.get("/template/<kind>.csv")
@require("admin")
def template(kind: str) -> Response:
    """A kind's columns with two example rows, to fill in."""
    if kind not in KINDS:
        raise NotFound("No such kind of file.")
    header, *rows = template_rows(kind)
    return csv_download(f"dockhand-{kind}-template.csv", header, rows)
