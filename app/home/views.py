"""Send each role to its start screen."""
from __future__ import annotations

from flask import Blueprint, current_app, redirect, render_template, url_for
from flask_login import current_user, login_required
from werkzeug.wrappers import Response

bp = Blueprint("home", __name__)


def start_url(role: str) -> str | None:
    """Where a role starts: workers and partners on the handheld, supervisors at the desk, admins in
    the console (None: the plain start page)."""
    endpoint = {"worker": "receiving.scan_page", "partner": "receiving.scan_page", "supervisor": "desk.index",
                "admin": "admin.users"}.get(role)
    return url_for(endpoint) if endpoint and endpoint in current_app.view_functions else None


@bp.get("/")
@login_required
def index() -> Response | str:
    """Each role to its start screen; a plain page otherwise."""
    start = start_url(current_user.role)
    return redirect(start) if start else render_template("home.html")
