"""Sign in and out."""
from __future__ import annotations

from flask import Blueprint, current_app, redirect, render_template, request, session, url_for
from flask_login import current_user, login_user, logout_user
from werkzeug.wrappers import Response

from app.auth.services import SignInPolicy, TooManyAttempts, sign_in, sign_out
from app.db import db
from app.signin.forms import LoginForm
from app.home.views import start_url
from app.web import safe_next
from app.web.i18n import spoken

bp = Blueprint("signin", __name__)


def _safe_next(target: str | None, role: str) -> str:
    """Only same-site relative redirects after login (no open redirect); else straight to the
    role's start screen (one redirect fewer on a slow link)."""
    return safe_next(target) or start_url(role) or url_for("home.index")


@bp.route("/login", methods=["GET", "POST"])
def login() -> Response | tuple[str, int]:
    """Show the sign-in form; on success go where the user was heading."""
    if current_user.is_authenticated:
        return redirect(url_for("home.index"))
    form = LoginForm()
    error, status = None, 200
    if form.validate_on_submit():
        policy = SignInPolicy.from_config(current_app.config)
        try:
            user = sign_in(db.session, form.username.data, form.password.data, address=request.remote_addr or "",
                           remember=bool(form.remember.data), policy=policy)
        except TooManyAttempts as exc:
            error, status = spoken(exc), exc.status_code
        else:
            if user is not None:
                session.clear()  # a fresh session: nothing (CSRF secret included) survives from before sign-in
                login_user(user, remember=bool(form.remember.data))
                return redirect(_safe_next(request.args.get("next"), user.role))
            error, status = "Wrong username or password.", 401
    return render_template("signin/login.html", form=form, error=error), status


@bp.post("/logout")
def logout() -> Response:
    """Sign out (POST with CSRF, so a link cannot sign somebody out): every session of the user
    ends on the server, on this device and any other."""
    if current_user.is_authenticated:
        sign_out(db.session, current_user.id)
    logout_user()
    session.clear()
    return redirect(url_for("signin.login"))
