"""Command-line tools: migrate, create-user, set-password, deactivate-user, activate-user,
sign-out-everywhere, api-key create/list/revoke, webhooks deliver/add, sweep-photos, seed-demo. The user commands run the admin console's use
cases as SYSTEM (audited like an admin's)."""
from __future__ import annotations

import uuid

import click
from flask import Flask, current_app

from app.auth.roles import SYSTEM


def register_cli(app: Flask) -> None:
    """Attach the commands to `flask --app wsgi ...`."""

    @app.cli.command("migrate")
    def migrate_cmd() -> None:
        """Apply every Alembic migration to DATABASE_URL."""
        from app.migrate import current_revision, upgrade

        url = current_app.config["DATABASE_URL"]
        before = current_revision(url)
        upgrade(url)
        after = current_revision(url)
        click.echo(f"database migrated from {before or 'empty'} to {after}" if before != after
                   else f"database already at the latest migration ({after})")

    @app.cli.command("create-user")
    @click.argument("username")
    @click.option("--role", type=click.Choice(["worker", "supervisor", "admin", "partner"]), required=True)
    @click.option("--name", default=None, help="Display name (defaults to the username).")
    @click.option("--partner-org", default=None, help="Partner organisation name (partners only).")
    @click.password_option()
    def create_user_cmd(username: str, role: str, name: str | None, partner_org: str | None, password: str) -> None:
        """Create a login."""
        from app.admin.services import create_user

        _run(lambda session: create_user(session, SYSTEM, username=username, role=role, name=name or username,
                                         password=password, partner_org_name=partner_org, idempotency_key=_key()))
        click.echo(f"created {role} {username.strip().lower()}")

    @app.cli.command("set-password")
    @click.argument("username")
    @click.password_option()
    def set_password_cmd(username: str, password: str) -> None:
        """Reset a password; every session of the user ends."""
        from app.admin.services import set_password

        _run(lambda session: set_password(session, SYSTEM, user=username, password=password, idempotency_key=_key()))
        click.echo(f"password of {username} set; every session of {username} ended")

    @app.cli.command("deactivate-user")
    @click.argument("username")
    def deactivate_user_cmd(username: str) -> None:
        """Switch a login off; every session of the user ends."""
        from app.admin.services import set_active

        _run(lambda session: set_active(session, SYSTEM, user=username, active=False, idempotency_key=_key()))
        click.echo(f"{username} deactivated; every session ended")

    @app.cli.command("activate-user")
    @click.argument("username")
    def activate_user_cmd(username: str) -> None:
        """Switch a login on again (sessions ended before stay ended)."""
        from app.admin.services import set_active

        _run(lambda session: set_active(session, SYSTEM, user=username, active=True, idempotency_key=_key()))
        click.echo(f"{username} activated")

    @app.cli.command("sign-out-everywhere")
    @click.argument("username")
    def sign_out_everywhere_cmd(username: str) -> None:
        """End every session and remember-me cookie of a user, on every device."""
        from app.admin.services import sign_out_everywhere

        ended = _run(lambda session: sign_out_everywhere(session, SYSTEM, user=username,
                                                         idempotency_key=_key())).sessions_ended
        click.echo(f"{ended} session(s) of {username} ended")

    @app.cli.group("api-key")
    def api_key_group() -> None:
        """Create, list and revoke integration API keys."""

    @api_key_group.command("create")
    @click.argument("name")
    @click.option("--scope", "scopes", multiple=True, required=True, help="Repeat for each scope, e.g. --scope rmas:write.")
    @click.option("--merchant", "merchants", multiple=True, help="Limit the key to this merchant's code (repeatable).")
    @click.option("--partner-org", default=None, help="A partner organisation's name: the key sees its warehouses only.")
    def api_key_create_cmd(name: str, scopes: tuple[str, ...], merchants: tuple[str, ...], partner_org: str | None) -> None:
        """Create a key and print its token once: only its hash is kept."""
        from app.api.services import create_api_key

        made = _run(lambda session: create_api_key(session, SYSTEM, name=name, scopes=list(scopes),
                                                   merchant_codes=list(merchants), partner_org_name=partner_org,
                                                   idempotency_key=_key()))
        click.echo(f"created API key {made.key_id} ({made.name}). Its token, shown this once:")
        click.echo(made.token)

    @api_key_group.command("list")
    def api_key_list_cmd() -> None:
        """Every key: id, name, scopes, last use, revoked or not (never a secret)."""
        from app.api.queries import list_keys
        from app.db import db

        for key in list_keys(db.session):
            state = f"revoked {key.revoked_at:%Y-%m-%d}" if key.revoked_at else "live"
            used = f"{key.last_used_at:%Y-%m-%d %H:%M}" if key.last_used_at else "never used"
            click.echo(f"{key.key_id}  {key.name:<30} {state:<18} {used:<17} {' '.join(key.scopes)}")

    @api_key_group.command("revoke")
    @click.argument("key_id")
    def api_key_revoke_cmd(key_id: str) -> None:
        """Revoke a key by its id (the part after 'dk_'): every later call with it is refused."""
        from app.api.services import revoke_api_key

        done = _run(lambda session: revoke_api_key(session, SYSTEM, key=key_id, idempotency_key=_key()))
        click.echo(f"revoked API key {done.key_id} ({done.name})")

    @app.cli.group("webhooks")
    def webhooks_group() -> None:
        """Deliver webhooks; register endpoints."""

    @webhooks_group.command("deliver")
    @click.option("--once", is_flag=True, help="Deliver what is due now, then stop (otherwise run until stopped).")
    @click.option("--threads", default=16, show_default=True, type=click.IntRange(1, 64), help="Deliveries in flight at once.")
    @click.option("--nice", default=10, show_default=True, help="CPU priority below the app servers' (0: the same).")
    def webhooks_deliver_cmd(once: bool, threads: int, nice: int) -> None:
        """The delivery worker: run one or more beside the web servers (make run starts one)."""
        import os

        from app.db import db
        from app.webhooks.worker import run

        assert db.session_factory is not None
        os.nice(max(0, nice))  # on a shared machine scans come first; deliveries catch up when the dock is quiet
        click.echo("webhook delivery worker running" + (" (once)" if once else ""))
        run(db.session_factory, once=once, threads=threads)

    @webhooks_group.command("add")
    @click.argument("url")
    @click.option("--event", "events", multiple=True, help="An event type (or prefix.*); none: every type.")
    def webhooks_add_cmd(url: str, events: tuple[str, ...]) -> None:
        """Register an endpoint and print its signing secret once."""
        from app.webhooks.services import register_endpoint

        made = _run(lambda session: register_endpoint(session, SYSTEM, url=url, event_types=list(events), idempotency_key=_key()))
        click.echo(f"registered webhook endpoint {made.id} for {made.url}. Its signing secret, shown this once:")
        click.echo(made.secret)

    @app.cli.command("sweep-photos")
    @click.option("--older-than-minutes", default=60, show_default=True, help="Leave younger files alone.")
    def sweep_photos_cmd(older_than_minutes: int) -> None:
        """Delete photo files no photo refers to (left by uploads that failed while storage was out of reach)."""
        from app.db import db
        from app.inspection.services import sweep_photo_files

        deleted = sweep_photo_files(db.session, current_app.extensions["dockhand.photos"],
                                    older_than_seconds=older_than_minutes * 60)
        click.echo(f"{len(deleted)} photo file(s) without a photo deleted")

    @app.cli.command("reconcile")
    def reconcile_cmd() -> None:
        """Compare each reconciliation source's newest snapshot with the ledger at its time (for a
        timer) and publish reconciliation.completed with each summary."""
        from app.reconciliation.services import compare_newest

        done = _run(lambda session: compare_newest(session, SYSTEM, key_prefix=_key()))
        for c in done:
            click.echo(f"{c.source} as of {c.as_of}: {c.lines} lines, {c.match} match, {c.over} over "
                       f"({c.units_over} units, {c.value_over}), {c.short} short ({c.units_short} units, {c.value_short}); "
                       f"roll-forward {'holds' if c.roll_forward_holds else 'does NOT hold'} "
                       f"({c.opening} + {c.received} - {c.moved_out} = {c.closing})")
        click.echo(f"{len(done)} source(s) compared")

    @app.cli.command("seed-demo")
    @click.option("--if-empty", is_flag=True, help="Do nothing when the database already has data.")
    def seed_demo_cmd(if_empty: bool) -> None:
        """Fill the database with a believable demo and print the demo logins."""
        from app.db import db
        from app.seed import seed_demo

        logins = seed_demo(db.session, if_empty=if_empty, instance_path=current_app.instance_path)
        click.echo("Demo logins (username / password / role):")
        for username, password, role in logins:
            click.echo(f"  {username:<12} {password:<22} {role}")


def _key() -> str:
    """A fresh idempotency key: each command line is one action."""
    return f"cli-{uuid.uuid4().hex}"


def _run(use_case):  # type: ignore[no-untyped-def]
    """Run a use case on the app's session; a refusal is a clear message and exit status 1."""
    from app.db import db
    from app.errors import DomainError

    try:
        return use_case(db.session)
    except DomainError as exc:
        raise click.ClickException(exc.message) from exc
