"""``flashloan keys``: API keys, made, listed and revoked on a database at the schema's head."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import click

from service.usecases.api_keys import ROLES

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from service.ops.settings import Settings


@click.group()
def keys() -> None:
    """Manage API keys."""


@contextmanager
def _database() -> Iterator[tuple[Settings, Engine]]:
    """The settings and the engine of a database at head; a usage error otherwise."""
    from audit import AuditStore
    from service.ops.settings import Settings, SettingsError
    from service.persistence.migrations import SchemaNotAtHead, require_head

    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None
    store = AuditStore.from_url(settings.database_url)
    try:
        try:
            require_head(store.engine)
        except SchemaNotAtHead as exc:
            raise click.ClickException(str(exc)) from None
        yield settings, store.engine
    finally:
        store.dispose()


@keys.command("create")
@click.option("--role", type=click.Choice(ROLES), required=True)
@click.option("--name", required=True, help="the channel's name for a channel key")
def create(role: str, name: str) -> None:
    """Create a key; it is printed once, alone on the last line, and stored only hashed."""
    from service.usecases.api_keys import create_key

    with _database() as (_, engine):
        try:
            key = create_key(engine, role, name)
        except ValueError as exc:
            raise click.ClickException(str(exc)) from None
    click.echo(f"created a {role} key named {name!r}; keep it secret, it is not shown again:")
    click.echo(key)


@keys.command("list")
def list_() -> None:
    """List every key, oldest first: id, role, status, when made and revoked, name."""
    from service.usecases.api_keys import list_keys

    with _database() as (_, engine):
        listed = list_keys(engine)
    click.echo(f"{'KEY_ID':<12}  {'ROLE':<12}  {'STATUS':<7}  {'CREATED_AT':<27}  "
               f"{'REVOKED_AT':<27}  NAME")
    for key in listed:
        click.echo(f"{key['key_id']:<12}  {key['role']:<12}  {key['status']:<7}  "
                   f"{key['created_at']:<27}  {key['revoked_at'] or '-':<27}  {key['name']}")


@keys.command("revoke")
@click.argument("key_id")
def revoke(key_id: str) -> None:
    """Revoke a key by its id (the part after ``fl_``); every worker refuses it within the key
    cache's lifetime (FLASHLOAN_KEY_CACHE_S)."""
    from service.usecases.api_keys import CLI_ACTOR, KeyNotFound, revoke_key

    with _database() as (settings, engine):
        try:
            view, changed = revoke_key(engine, key_id, actor=CLI_ACTOR)
        except KeyNotFound:
            raise click.ClickException(f"no key {key_id}; `flashloan keys list` lists them") \
                from None
    if not changed:
        click.echo(f"{key_id} was already revoked at {view['revoked_at']}")
        return
    click.echo(f"revoked {key_id} ({view['role']} {view['name']!r}); every worker refuses it "
               f"within {settings.key_cache_s:g} s")
