"""``flashloan keys``: API keys."""

from __future__ import annotations

import click

from service.auth import ROLES


@click.group()
def keys() -> None:
    """Manage API keys."""


@keys.command("create")
@click.option("--role", type=click.Choice(ROLES), required=True)
@click.option("--name", required=True, help="the channel's name for a channel key")
def create(role: str, name: str) -> None:
    """Create a key; it is printed once, alone on the last line, and stored only hashed."""
    from audit import AuditStore
    from service.auth import create_key
    from service.db import migrate
    from service.settings import Settings, SettingsError

    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None
    store = AuditStore.from_url(settings.database_url)
    try:
        migrate(store.engine)
        try:
            key = create_key(store.engine, role, name)
        except ValueError as exc:
            raise click.ClickException(str(exc)) from None
    finally:
        store.dispose()
    click.echo(f"created a {role} key named {name!r}; keep it secret, it is not shown again:")
    click.echo(key)
