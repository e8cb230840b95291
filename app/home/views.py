"""The start page of each role, and the header's "who and where" on every page.

A worker or partner keeps landing on the scan screen when they sign in (start_url: the scan box is
their job, and a scanner user wants no tap before the first scan); supervisors land on the desk,
admins in the console. Every page's header links to the start page (/) and says who is signed in
and at which warehouse; a person who receives switches warehouse there, in two taps."""
from __future__ import annotations

from typing import Any, NamedTuple

from flask import Blueprint, current_app, flash, redirect, request, session, url_for
from flask_babel import gettext
from flask_login import current_user, login_required
from werkzeug.wrappers import Response

from app.db import db, utcnow
from app.desk import queries as desk_queries
from app.errors import DomainError
from app.home import queries, services
from app.home.domain import day_start
from app.home.queries import Place
from app.receiving.views import current_warehouse_id
from app.auth.services import choose_language
from app.web import actor, as_id, form_int, is_htmx, render, require, safe_next
from app.web.i18n import LANGUAGES, spoken

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
def index() -> Response:
    """The start page of the signed-in person's role: big links to their work, and their figures."""
    me = actor()
    place = whereabouts()
    work = None
    if place is not None and place.current is not None:
        since = day_start(utcnow(), current_app.config.get("TIMEZONE", "UTC"))
        work = queries.work_today(db.session, me, place.current.id, since)
    counts = None
    if me.can("view_desk") and "desk.index" in current_app.view_functions:
        counts = desk_queries.queue_counts(db.session, me, int(current_app.config.get("QUEUE_AGEING_HOURS", 48)))
    template = {"worker": "home/floor.html", "partner": "home/floor.html", "supervisor": "home/supervisor.html",
                "admin": "home/admin.html"}.get(me.role, "home.html")
    return render(template, place=place, work=work, counts=counts,
                  zone=current_app.config.get("TIMEZONE", "UTC"))


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
        flash(spoken(exc), "error")
        return redirect(back, code=303)  # type: ignore[return-value]
    session["warehouse_id"] = place.id
    flash(gettext("You are working at %(code)s · %(name)s.", code=place.code, name=place.name), "success")
    return redirect(back, code=303)  # type: ignore[return-value]


@bp.post("/language")
@login_required
def choose_language_view() -> Response:
    """The language this person's screens speak ("" : the browser's), then back to the page."""
    back = safe_next(request.form.get("next")) or url_for("home.index")
    try:
        choose_language(db.session, current_user.id, request.form.get("language") or None, languages=LANGUAGES)
    except DomainError as exc:
        flash(spoken(exc), "error")
    return redirect(back, code=303)  # type: ignore[return-value]
