"""Send each role to its start screen."""
from __future__ import annotations

from flask import Blueprint, current_app, redirect, render_template, url_for
from flask_login import current_user, login_required
from werkzeug.wrappers import Response

bp = Blueprint("home", __name__)


@bp.get("/")
@login_required
def index() -> Response | str:
    """Workers and partners to the handheld, supervisors to the desk, admins to the console."""
    role = current_user.role
    if role in ("worker", "partner") and "receiving.scan_page" in current_app.view_functions:
        return redirect(url_for("receiving.scan_page"))
    if role == "supervisor" and "desk.index" in current_app.view_functions:
        return redirect(url_for("desk.index"))
    if role == "admin" and "admin.users" in current_app.view_functions:
        return redirect(url_for("admin.users"))
    return render_template("home.html")
