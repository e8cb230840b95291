"""Send each role to its start screen; the header's "who and where" on every page: who is signed
in and at which warehouse; a person who receives switches warehouse there, in two taps."""
from __future__ import annotations

from typing import Any, NamedTuple

from flask import Blueprint, current_app, flash, redirect, render_template, request, session, url_for
from flask_login import current_user, login_required
from werkzeug.wrappers import Response

from app.db import db
from app.errors import DomainError
from app.home import queries, services
from app.home.queries import Place
from app.receiving.views import current_warehouse_id
from app.web import actor, as_id, form_int, is_htmx, require, safe_next

bp = Blueprint("home", __name__)


def start_url(role: str) -> str | None:
    """Where a role lands after signing in: workers and partners on the handheld's scan screen,
    supervisors at the desk, admins in the console (None: the start page)."""
    endpoint = {"worker": "receiving.scan_page", "partner": "receiving.scan_page", "supervisor": "desk.index",
                "admin": "admin.users"}.get(role)
    return url_for(endpoint) if endpoint and endpoint in current_app.view_functions else None


class Whereabouts(NamedTuple):
    """The warehouse a person works at now (None: not chosen yet) and those they may switch to."""

    current: Place | None
    choices: list[Place]


def whereabouts() -> Whereabouts | None:
    """For the header (read only when a whole page is drawn): None for a role that works at no
    warehouse (and on an error page that cannot reach the database: nobody is signed in there)."""
    if not current_user.is_authenticated or not actor().can("receive"):
        return None
    choices = queries.places(db.session, actor())
    wid = current_warehouse_id()
    return Whereabouts(next((p for p in choices if p.id == wid), None), choices)


def _here() -> str:
    """This page's address, to come back to after a switch (a page drawn for a POST: the start page)."""
    return safe_next(request.full_path.rstrip("?")) or "" if request.method == "GET" else ""


@bp.app_context_processor
def _header() -> dict[str, Any]:
    return {"whereabouts": whereabouts, "here_url": _here}


@bp.get("/")
@login_required
def index() -> Response | str:
    """Each role to its start screen; a plain page otherwise."""
    start = start_url(current_user.role)
    return redirect(start) if start else render_template("home.html")


@bp.post("/warehouse")
@require("receive")
def choose_warehouse() -> Response:
    """Switch the warehouse this person works at (the scan screen's too), then go back to the page.
    A refusal (not one of theirs, a parcel open elsewhere) changes nothing and says why there."""
    back = safe_next(request.form.get("next")) or url_for("home.index")
    try:
        place = services.choose_place(db.session, actor(), form_int("warehouse_id"),
                                      parcel_id=as_id(session.get("parcel_id")))
    except DomainError as exc:
        if is_htmx():
            raise
        flash(exc.message, "error")
        return redirect(back, code=303)  # type: ignore[return-value]
    session["warehouse_id"] = place.id
    flash(f"You are working at {place.code} · {place.name}.", "success")
    return redirect(back, code=303)  # type: ignore[return-value]
