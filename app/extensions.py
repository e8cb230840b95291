"""Extensions created unbound and attached to the app in create_app."""
from __future__ import annotations

from flask_login import LoginManager
from flask_wtf.csrf import CSRFProtect
from htmx_flask import Htmx

csrf = CSRFProtect()
htmx = Htmx()
login_manager = LoginManager()
login_manager.login_view = "signin.login"
login_manager.login_message = "Sign in to continue."
# Sessions are ended on the server (app.auth.models.UserSession), not bound to the client's
# address: a handheld roaming from Wi-Fi to mobile data stays signed in.
login_manager.session_protection = None
