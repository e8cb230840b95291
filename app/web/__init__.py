"""Web plumbing shared by every blueprint: page-or-fragment rendering, role guards, errors."""
from __future__ import annotations

import json
import logging
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import Flask, Response, abort, flash, g, make_response, redirect, render_template, request
from flask_babel import gettext
from flask_login import AnonymousUserMixin, current_user, login_required, login_url
from sqlalchemy.exc import SQLAlchemyError
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from app.auth.roles import Actor
from app.connections import database_unavailable
from app.db import db, end_transaction
from app.errors import DomainError, IdempotencyKeyReused
from app.web.i18n import spoken
from app.words import N_

log = logging.getLogger(__name__)
F = TypeVar("F", bound=Callable[..., Any])

# What a person sees when an answer went wrong. The action may have been saved before the answer
# was lost: handhelds and the desk send it again with the same key (static/dockhand.js), and a
# saved action answers its first result again, so the message says it is being checked.
UNAVAILABLE = N_("Dockhand cannot reach its database just now. What you sent is being checked: "
                 "it is sent again by itself, and saved once.")
SERVER_ERROR = N_("Something went wrong on our side. If you were saving something, check whether it was "
                  "saved before you do it again.")
RETRY_AFTER_SECONDS = 2

# Scripts only from Dockhand's own files (no inline script, no eval; WebAssembly compiled, for the
# vendored barcode decoder where the browser has none); inline style attributes stay allowed (label
# font sizes, the print page's @page size, htmx's indicator style).
CONTENT_SECURITY_POLICY = ("default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self' 'unsafe-inline'; "
                           "img-src 'self' data: blob:; media-src 'self' blob:; connect-src 'self'; "
                           "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")


def is_htmx() -> bool:
    """True when the request wants a fragment: an htmx request that is neither boosted
    navigation nor a history restore (those swap the whole body and need the page)."""
    env = request.environ  # not request.headers: each header it lacks would cost a caught KeyError
    return (env.get("HTTP_HX_REQUEST") == "true" and env.get("HTTP_HX_BOOSTED") != "true"
            and env.get("HTTP_HX_HISTORY_RESTORE_REQUEST") != "true")


# The largest id a table holds (a 32-bit integer key): a larger one in a URL or a form is
# "not found" or "not a number", never an overflow in the database.
MAX_ID = 2**31 - 1


def as_id(raw: object) -> int | None:
    """A positive id from a form, query or session value, or None when it is not one."""
    text = str(raw).strip() if raw is not None else ""
    if not text.isdecimal() or not text.isascii() or len(text) > 10:
        return None
    value = int(text)
    return value if 0 < value <= MAX_ID else None


def form_int(name: str) -> int | None:
    """An id-sized whole number from a form or query field, or None (never a 500)."""
    return as_id(request.values.get(name))


def form_ids(name: str) -> list[int]:
    """Every id-sized whole number sent under one name (ticked rows); junk is left out."""
    return [i for i in (as_id(raw) for raw in request.values.getlist(name)) if i is not None]


def safe_next(target: str | None) -> str | None:
    """A same-site relative path to return to, or None (no open redirects, no control characters)."""
    from urllib.parse import urlsplit

    if (not target or len(target) > 2000 or not target.startswith("/") or target.startswith("//")
            or "\\" in target or any(ord(c) < 32 or ord(c) == 127 for c in target)):
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return None
    return target


def new_key() -> str:
    """A fresh idempotency key for a form rendered now (a double submit reuses it)."""
    import uuid

    return uuid.uuid4().hex


def render(page: str, fragment: str | None = None, *, status: int = 200, trigger: dict[str, Any] | None = None,
           **context: Any) -> Response:
    """Render the whole page, or only its fragment for htmx; both are cached apart (Vary)."""
    template = fragment if (fragment and is_htmx()) else page
    resp = make_response(render_template(template, **context), status)
    resp.headers["Vary"] = "HX-Request"
    if trigger:
        resp.headers["HX-Trigger"] = json.dumps(trigger)
    return resp


def actor() -> Actor:
    """The signed-in user as the services see them."""
    return current_user.actor()


def require(permission: str) -> Callable[[F], F]:
    """Guard a view: signed in, and the role holds the permission (403 otherwise, on the server)."""

    def decorator(view: F) -> F:
        @wraps(view)
        @login_required
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            if not current_user.actor().can(permission):
                abort(403)
            return view(*args, **kwargs)

        return wrapped  # type: ignore[return-value]

    return decorator


API_PREFIX = "/api/"


def is_api() -> bool:
    """The request is for the integration API (/api/v1): its answers are JSON, never a page."""
    return request.path.startswith(API_PREFIX)


def problem_response(message: str, status: int, *, errors: list[dict[str, str]] | None = None) -> Response:
    """A refusal as application/problem+json (RFC 9457): the HTTP status's title, the message as
    `detail`, the request id to quote, and for invalid input the field-level list `errors`."""
    from http import HTTPStatus

    body: dict[str, Any] = {"type": "about:blank", "title": HTTPStatus(status).phrase, "status": status,
                            "detail": message, "instance": request.path, "request_id": g.get("request_id", "-")}
    if errors:
        body["errors"] = errors
    resp = make_response(json.dumps(body), status)
    resp.mimetype = "application/problem+json"
    return resp


def error_response(message: str, status: int, *, errors: list[dict[str, str]] | None = None) -> Response:
    """How every refusal reaches the screen, decided once.

    htmx requests get the message fragment retargeted into #messages (the htmx config in
    base.html swaps 4xx responses) plus a `dockhand:error` event for sound and vibration;
    full-page requests get the error page; the API gets problem+json (with `errors`, field by field).
    """
    if "_login_user" not in g:  # the page shows who is signed in when that can be known without failing
        try:
            current_user._get_current_object()
        except SQLAlchemyError:
            g._login_user = AnonymousUserMixin()
    if status >= 500:  # a reference a worker can quote: the request id on every log line of it
        message = f"{message} Reference: {g.get('request_id', '-')}."
    if is_api():
        return problem_response(message, status, errors=errors)
    if is_htmx():
        resp = make_response(render_template("_messages.html", messages=[("error", message)]), status)
        resp.headers["HX-Retarget"] = "#messages"
        resp.headers["HX-Reswap"] = "innerHTML"
        resp.headers["HX-Trigger"] = json.dumps({"dockhand:error": {"message": message}})
        resp.headers["Vary"] = "HX-Request"
        return resp
    return make_response(render_template("error.html", message=message, status=status), status)


def register_web(app: Flask) -> None:
    """Error handlers (each ends the transaction: end_transaction), user loader, template helpers."""
    from app.auth.models import SignedInUser, signed_in_user
    from app.extensions import login_manager

    @login_manager.user_loader
    def load_user(session_id: str) -> SignedInUser | None:
        return signed_in_user(db.session, session_id)

    @app.before_request
    def refuse_nul_characters() -> Response | None:
        """No text with a NUL character is stored (PostgreSQL cannot hold one; SQLite would,
        silently): it is refused before any view sees it, whatever the field."""
        if "\x00" in request.path or any("\x00" in key or "\x00" in value
                                          for key, value in request.values.items(multi=True)):
            return error_response(gettext("That text holds a NUL character (\\0), which is not accepted. "
                                          "Scan or type it again."), 400)
        return None

    @login_manager.unauthorized_handler
    def signed_out() -> Response:
        """Not signed in (or the session was ended): a page goes to the sign-in form; an htmx or
        scan request gets a 401 that says so, so a handheld keeps what it was sending."""
        if request.headers.get("HX-Request") == "true":
            resp = error_response(gettext("You are signed out. Sign in again to go on: scans waiting on this "
                                          "device are kept."), 401)
            resp.headers["X-Dockhand-Session"] = "signed-out"
            return resp
        flash(login_manager.login_message, login_manager.login_message_category)
        return redirect(login_url(login_manager.login_view, next_url=request.url))

    @app.errorhandler(DomainError)
    def domain_error(exc: DomainError) -> Response:
        end_transaction(db.session)
        status, message = exc.status_code, (exc.message if is_api() else spoken(exc))
        if is_api() and isinstance(exc, IdempotencyKeyReused):
            # The API's contract: the same Idempotency-Key with another body is unprocessable.
            status, message = 422, ("This Idempotency-Key was already used for a different request: send a new key "
                                    "with each new request, and the same key only to send the same request again.")
        return error_response(message, status, errors=getattr(exc, "errors", None))

    @app.errorhandler(CSRFError)
    def csrf_error(exc: CSRFError) -> Response:
        end_transaction(db.session)
        resp = error_response(gettext("Your session expired or the form was stale. Reload the page and try again."), 400)
        resp.headers["X-Dockhand-Session"] = "stale"
        return resp

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Response:
        end_transaction(db.session)
        messages = {
            403: gettext("You are not allowed to do that."),
            404: gettext("Nothing here. Check the code or go back."),
            405: gettext("That action is not available here."),
            413: gettext("That file is too large."),
        }
        if is_api():  # the client is a program: werkzeug's description says what was wrong with the request
            return error_response(exc.description or "Request refused.", exc.code or 500)
        resp = error_response(messages.get(exc.code or 500, exc.description or "Request refused."), exc.code or 500)
        return resp

    @app.errorhandler(Exception)
    def server_error(exc: Exception) -> Response:
        try:
            db.session.rollback()
        except SQLAlchemyError:
            log.warning("rollback after an error failed too", exc_info=True)
        if database_unavailable(exc):
            if "_login_user" not in g:  # the error page must not need the database to show who is signed in
                g._login_user = AnonymousUserMixin()
            log.warning("database unavailable: %s", exc.__class__.__name__, exc_info=True)
            resp = error_response(gettext(UNAVAILABLE), 503)
            resp.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
            return resp
        log.exception("unhandled error")
        return error_response(gettext(SERVER_ERROR), 500)

    @app.context_processor
    def inject() -> dict[str, Any]:
        can = (lambda perm: current_user.is_authenticated and current_user.actor().can(perm))
        from flask import current_app

        return {"can": can, "has_endpoint": lambda name: name in current_app.view_functions}

    app.add_template_global(new_key)  # a fresh idempotency key for each form rendered

    from app.web.i18n import age as age_in_words, register_i18n

    register_i18n(app)  # the language's filters: money, number, when, day

    @app.template_filter("age")
    def age(value: Any) -> str:
        from app.db import as_utc, utcnow

        return "" if value is None else age_in_words(int((utcnow() - as_utc(value)).total_seconds()))

    production = app.config.get("ENV_NAME") == "production"

    @app.after_request
    def security_headers(resp: Response) -> Response:
        resp.headers.setdefault("X-Content-Type-Options", "nosniff")
        resp.headers.setdefault("Referrer-Policy", "same-origin")
        if resp.mimetype == "text/html" and not is_htmx() and not 300 <= resp.status_code < 400:
            # A document's policy: a redirect or a fragment swapped into a page renders nothing of
            # its own (the page's policy governs it), so they go without its 400 bytes.
            resp.headers.setdefault("X-Frame-Options", "DENY")
            resp.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        if request.endpoint != "static" and "Cache-Control" not in resp.headers:
            # Pages show customers, serials and refund amounts: no shared or browser cache keeps
            # them. A view that may be cached says so itself (a photo: private, for an hour).
            resp.headers["Cache-Control"] = "no-store"
        if production:
            resp.headers.setdefault("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
        return resp
