"""Sign in and out."""
from __future__ import annotations

from flask import Blueprint, redirect, render_template, request, url_for
from flask_login import current_user, login_user, logout_user
from werkzeug.wrappers import Response

from app.signin.forms import LoginForm
from app.auth.models import user_signing_in
from app.db import db
from app.web import safe_next

bp = Blueprint("signin", __name__)


def _safe_next(target: str | None) -> str:
    """Only same-site relative redirects after login (no open redirect)."""
    return safe_next(target) or url_for("home.index")


@bp.route("/login", methods=["GET", "POST"])
def login() -> Response | str:
    """Show the sign-in form; on success go where the user was heading."""
    if current_user.is_authenticated:
        return redirect(url_for("home.index"))
    form = LoginForm()
    error = None
    if form.validate_on_submit():
        user = user_signing_in(db.session, form.username.data, form.password.data)
        if user is not None:
            login_user(user, remember=form.remember.data)
            return redirect(_safe_next(request.args.get("next")))
        error = "Wrong username or password."
    status = 401 if error else 200
    return render_template("signin/login.html", form=form, error=error), status  # type: ignore[return-value]


@bp.post("/logout")
def logout() -> Response:
    """Sign out (POST with CSRF, so a link cannot sign somebody out)."""
    logout_user()
    return redirect(url_for("signin.login"))
