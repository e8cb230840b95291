"""The ceiling: the smallest Flask app, served under the same gunicorn settings as Dockhand.

What one request costs with no database, no session, no template: the most any endpoint
of this stack can do on this machine.
"""
from flask import Flask

app = Flask(__name__)


@app.get("/")
def index() -> tuple[str, int, dict[str, str]]:
    """A few bytes of text."""
    return "ok\n", 200, {"Content-Type": "text/plain"}
