"""Command-line tools: migrate, create-user, seed-demo."""
from __future__ import annotations

import click
from flask import Flask, current_app


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
        from app.auth.services import create_user
        from app.db import db
        from app.errors import DomainError

        try:
            user = create_user(db.session, username=username, role=role, name=name or username,
                               password=password, partner_org_name=partner_org)
        except DomainError as exc:
            raise click.ClickException(exc.message) from exc
        click.echo(f"created {user.role} {user.username}")

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
