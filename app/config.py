"""Settings from the environment."""
from __future__ import annotations

import os
import secrets
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

from app.labels.printer import DEFAULT_NETWORKS, PrinterNetworks


def _instance_secret(instance_path: Path) -> str:
    """The demo's secret key: generated once and kept under instance/."""
    path = instance_path / "secret_key"
    if path.exists():
        return path.read_text().strip()
    instance_path.mkdir(parents=True, exist_ok=True)
    key = secrets.token_hex(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(key)
    return key


def _zone(name: str) -> str:
    """An IANA time zone name this machine knows, or a clear refusal at start-up."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise RuntimeError(f"DOCKHAND_TIMEZONE={name!r} is not a time zone this machine knows "
                           "(an IANA name such as America/Los_Angeles).") from exc
    return name


def load_config(instance_path: Path) -> dict[str, object]:
    """Read DATABASE_URL, SECRET_KEY and the rest; production must set its own secret."""
    env = os.environ.get("DOCKHAND_ENV", "demo")
    secret = os.environ.get("SECRET_KEY")
    if not secret:
        if env == "production":
            raise RuntimeError("SECRET_KEY must be set when DOCKHAND_ENV=production.")
        secret = _instance_secret(instance_path)
    default_db = f"sqlite:///{instance_path / 'dockhand.db'}"
    remember_days = int(os.environ.get("DOCKHAND_REMEMBER_DAYS", 14))
    return {
        "ENV_NAME": env,
        "SECRET_KEY": secret,
        "DATABASE_URL": os.environ.get("DATABASE_URL", default_db),
        "PHOTO_DIR": os.environ.get("DOCKHAND_PHOTO_DIR", str(instance_path / "photos")),
        # Photos in a folder (the demo) or in S3-compatible object storage (app/inspection/storage.py).
        "PHOTO_STORE": os.environ.get("DOCKHAND_PHOTO_STORE", "local"),
        "S3_BUCKET": os.environ.get("DOCKHAND_S3_BUCKET", ""),
        "S3_ENDPOINT_URL": os.environ.get("DOCKHAND_S3_ENDPOINT_URL", ""),
        "S3_PREFIX": os.environ.get("DOCKHAND_S3_PREFIX", "photos/"),
        "S3_REGION": os.environ.get("DOCKHAND_S3_REGION", ""),
        "PHOTO_MAX_BYTES": int(os.environ.get("DOCKHAND_PHOTO_MAX_BYTES", 15 * 1024 * 1024)),
        # The largest CSV file the import takes (app/intake): its answer says so; a larger request
        # than MAX_CONTENT_LENGTH is refused before it is read, with the import page's message.
        "IMPORT_MAX_BYTES": int(os.environ.get("DOCKHAND_IMPORT_MAX_BYTES", 10 * 1024 * 1024)),
        # Threads (each with its own database connection) that apply an imported file's returns.
        "MAX_CONTENT_LENGTH": max(int(os.environ.get("DOCKHAND_PHOTO_MAX_BYTES", 15 * 1024 * 1024)),
                                  int(os.environ.get("DOCKHAND_IMPORT_MAX_BYTES", 10 * 1024 * 1024))) + 1024 * 1024,
        "REFUND_APPROVAL_THRESHOLD": Decimal(os.environ.get("DOCKHAND_REFUND_THRESHOLD", "250.00")),
        "LABEL_PRINTER_TIMEOUT": float(os.environ.get("DOCKHAND_PRINTER_TIMEOUT", 5.0)),
        "PRINTER_NETWORKS": PrinterNetworks.parse(os.environ.get("DOCKHAND_PRINTER_NETWORKS", DEFAULT_NETWORKS)),
        "QUEUE_AGEING_HOURS": int(os.environ.get("DOCKHAND_QUEUE_AGEING_HOURS", 48)),
        # The site's time zone (an IANA name): where "today" starts on the start pages' figures.
        "TIMEZONE": _zone(os.environ.get("DOCKHAND_TIMEZONE", "UTC")),
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": env == "production",
        "REMEMBER_COOKIE_SECURE": env == "production",
        "REMEMBER_COOKIE_HTTPONLY": True,
        "REMEMBER_COOKIE_SAMESITE": "Lax",
        "REMEMBER_COOKIE_DURATION": timedelta(days=remember_days),
        "REMEMBER_DAYS": remember_days,  # the server ends a remembered session then too
        "SESSION_HOURS": int(os.environ.get("DOCKHAND_SESSION_HOURS", 12)),
        "SIGNIN_MAX_FAILURES": int(os.environ.get("DOCKHAND_SIGNIN_MAX_FAILURES", 5)),
        "SIGNIN_MAX_FAILURES_PER_ADDRESS": int(os.environ.get("DOCKHAND_SIGNIN_MAX_FAILURES_PER_ADDRESS", 20)),
        "SIGNIN_WINDOW_MINUTES": int(os.environ.get("DOCKHAND_SIGNIN_WINDOW_MINUTES", 15)),
        # Proxies in front of the app (a load balancer, nginx): how many X-Forwarded-* hops to
        # believe for the client's address, scheme and host. 0 believes none of them.
        "PROXY_HOPS": int(os.environ.get("DOCKHAND_PROXY_HOPS", 0)),
        "METRICS_TOKEN": os.environ.get("DOCKHAND_METRICS_TOKEN", ""),
        "WTF_CSRF_TIME_LIMIT": None,  # a shift is long; the token lives as long as the session
    }
