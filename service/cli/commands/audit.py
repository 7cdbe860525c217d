"""``flashloan audit``: verify, export, checkpoint, purge and replay the audit trail."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from audit.store import AuditStore
    from service.ops.settings import Settings

CLI_ACTOR = "system:cli"
_DATE = click.DateTime(["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M:%SZ"])


@click.group()
def audit() -> None:
    """Verify, export, checkpoint, purge and replay the audit trail."""


def _settings() -> Settings:
    from service.ops.settings import Settings, SettingsError

    try:
        return Settings.from_env()
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None


@contextmanager
def _open_store(settings: Settings) -> Iterator[AuditStore]:
    """Open the store, at head, without touching its schema: auditors may be read-only."""
    from sqlalchemy.exc import SQLAlchemyError

    from audit.errors import AuditError
    from audit.store import AuditStore
    from service.persistence.migrations import SchemaNotAtHead, require_head

    try:
        store = AuditStore.from_url(settings.database_url)
    except AuditError as exc:
        raise click.ClickException(str(exc)) from None
    try:
        require_head(store.engine)
        yield store
    except SchemaNotAtHead as exc:
        raise click.ClickException(str(exc)) from None
    except SQLAlchemyError as exc:
        detail = str(getattr(exc, "orig", None) or exc)
        first_line = (detail.splitlines() or ["no detail"])[0]
        raise click.ClickException(
            f"the audit trail in {store!r} cannot be read or written: {first_line}"
        ) from None
    finally:
        store.dispose()


def _utc(moment: datetime | None) -> datetime | None:
    return None if moment is None else moment.replace(tzinfo=UTC)


@audit.command()
@click.option("--start", type=click.IntRange(min=1), help="First seq to check (default 1).")
@click.option("--end", type=click.IntRange(min=1), help="Last seq to check (default: head).")
@click.option(
    "--checkpoint",
    "checkpoint_paths",
    multiple=True,
    type=click.Path(exists=True, path_type=Path),
    help="A checkpoint file, or a folder of them, the chain must still extend. Repeatable.",
)
@click.option(
    "--service-checkpoints/--no-service-checkpoints",
    default=True,
    show_default=True,
    help="Hold the chain to the service's own checkpoints too: its folder "
    "($FLASHLOAN_VAR_DIR/checkpoints) and the ledger in the database.",
)
@click.option(
    "--public-key",
    help="Ed25519 public key (hex or base64) the checkpoints must be signed with "
    "(default: the service's, derived from FLASHLOAN_SIGNING_KEY).",
)
@click.option(
    "--applications",
    is_flag=True,
    help="Also check each application's stored answer against the SHA-256 its records state.",
)
@click.option(
    "--tables",
    is_flag=True,
    help="Also check the tables that figures and decisions read (applications, loans, "
    "loan_performance, ...) against the records they derive from, naming each row that differs.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def verify(
    start: int | None,
    end: int | None,
    checkpoint_paths: tuple[Path, ...],
    service_checkpoints: bool,
    public_key: str | None,
    applications: bool,
    tables: bool,
    as_json: bool,
) -> None:
    """Walk the chain; exit 0 when intact, 1 at the first broken record, 2 on a usage error."""
    from audit.checkpoints import load_checkpoints
    from audit.errors import CheckpointError, InvalidRange
    from service.usecases import verification

    settings = _settings()
    try:
        given = load_checkpoints(checkpoint_paths)
    except CheckpointError as exc:
        raise click.ClickException(str(exc)) from None
    with _open_store(settings) as store:
        try:
            trusted = public_key or verification.service_public_key(settings, store)
        except CheckpointError as exc:
            raise click.ClickException(str(exc)) from None
        found = (
            verification.service_checkpoints_of(settings, store, trusted, given)
            if service_checkpoints else verification.ServiceCheckpoints(given)
        )
        try:
            result = verification.verify_trail(
                store, checkpoints=found, public_key=trusted, start=start, end=end,
                check_applications=applications, tables=tables)
        except InvalidRange as exc:
            raise click.BadParameter(str(exc), param_hint=f"--{exc.parameter}") from None
    if as_json:
        click.echo(json.dumps(result.to_dict(), sort_keys=True))
    else:
        click.echo(result.summary())
        if not result.chain.ok or result.answers_fail:
            click.echo(f"({result.checked} records verified before it)")
        for table in result.tables or ():
            click.echo(table.message())
            for difference in table.differences:
                click.echo(f"  {difference.table} row {difference.row}: {difference.problem}")
    click.get_current_context().exit(0 if result.ok else 1)


@audit.command()
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["jsonl", "csv"]),
    default="jsonl",
    show_default=True,
    help="One record per line as JSON, or CSV with a header.",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write to this file instead of standard output.",
)
@click.option("--since", type=_DATE, help="Recorded at or after this UTC time.")
@click.option("--until", type=_DATE, help="Recorded before this UTC time.")
@click.option("--kind", "kinds", multiple=True, help="Record kind, e.g. decision.made. Repeatable.")
@click.option("--application-id")
@click.option("--actor", help="role:key_id, e.g. channel:key_ab12.")
@click.option("--national-id", help="Applicant's national ID; hashed with FLASHLOAN_PII_KEY.")
@click.option("--subject", help="Pseudonymised national ID (HMAC hex), as stored.")
@click.option("--outcome", help="approved, declined or deferred.")
@click.option("--model-version")
@click.option("--reason-code")
@click.option("--start", type=click.IntRange(min=1), help="First seq.")
@click.option("--end", type=click.IntRange(min=1), help="Last seq.")
def export(fmt: str, out: Path | None, national_id: str | None, **filters: Any) -> None:
    """Stream the records matching the filters as JSON lines or CSV."""
    from audit.privacy import Pseudonymiser
    from audit.records import AuditQuery

    settings = _settings()
    query = AuditQuery(
        since=_utc(filters["since"]),
        until=_utc(filters["until"]),
        kinds=filters["kinds"],
        application_id=filters["application_id"],
        actor=filters["actor"],
        subject=filters["subject"],
        outcome=filters["outcome"],
        model_version=filters["model_version"],
        reason_code=filters["reason_code"],
        start_seq=filters["start"],
        end_seq=filters["end"],
    )
    if national_id is not None:
        try:
            query = query.with_national_id(national_id, Pseudonymiser(settings.pii_key))
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--national-id") from None
    count = 0
    with (
        _open_store(settings) as store,
        click.open_file(str(out) if out else "-", "w", encoding="utf-8") as sink,
    ):
        for line in store.export(fmt, query):
            sink.write(line)
            count += 1
    if out is not None:
        click.echo(f"wrote {count} lines to {out}", err=True)


@audit.command()
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder for <seq>-<chain>.json (default: $FLASHLOAN_VAR_DIR/checkpoints).",
)
def checkpoint(out: Path | None) -> None:
    """Sign the chain head with the Ed25519 signing key and write it to a file."""
    from audit.checkpoints import sign_checkpoint, write_checkpoint
    from audit.errors import CheckpointError

    settings = _settings()
    try:
        with _open_store(settings) as store:
            key = store.signing_key(settings.signing_key, settings.var_dir,
                                    production=settings.is_production)
            signed = sign_checkpoint(store, key)
        path = write_checkpoint(signed, out or settings.var_dir / "checkpoints")
    except CheckpointError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"checkpoint of record {signed.seq} ({signed.record_hash}) at {signed.time}")
    click.echo(f"public key {signed.public_key}")
    click.echo(str(path))


@audit.command()
@click.option(
    "--before",
    required=True,
    type=_DATE,
    help="Purge payloads recorded before this UTC date or time.",
)
@click.option(
    "--retention-years",
    type=click.IntRange(min=0),
    help="Retention period to enforce instead of the default 5 years.",
)
def purge(before: datetime, retention_years: int | None) -> None:
    """Set to NULL the payloads older than --before; the chain stays verifiable."""
    from audit.errors import PurgeRefused

    with _open_store(_settings()) as store:
        try:
            result = store.purge(
                before.replace(tzinfo=UTC), CLI_ACTOR, retention_years=retention_years
            )
        except PurgeRefused as exc:
            raise click.ClickException(str(exc)) from None
    span = f" (records {result.first_seq}..{result.last_seq})" if result.purged else ""
    click.echo(f"purged {result.purged} payloads{span}; recorded as record {result.record.seq}")


@audit.command()
@click.argument("application_id")
@click.option("--json", "as_json", is_flag=True, help="Print the whole result as JSON.")
@click.option("--strategy", help="replay under this MODEL/POLICY instead of the recorded one")
def replay(application_id: str, as_json: bool, strategy: str | None) -> None:
    """Re-run a recorded decision through its recorded model and policy (or another
    strategy's); exit 1 on a difference."""
    from service.usecases.engines import Engines
    from service.usecases.replay import InvalidStrategy, Replayer, ReplayError

    settings = _settings()
    with _open_store(settings) as store:
        try:
            result = Replayer(store, Engines(settings.model_search, settings.policy_search)
                              ).replay(application_id, strategy)
        except (InvalidStrategy, ReplayError) as exc:
            raise click.ClickException(str(exc)) from None
    if as_json:
        click.echo(json.dumps(result, ensure_ascii=False, indent=2))
    elif result["match"]:
        click.echo(f"{application_id}: replay matches the recorded decision "
                   f"({result['recorded']['outcome']})")
    else:
        for diff in result["differences"]:
            click.echo(f"{application_id}: {diff['field']} recorded {diff['recorded']!r}, "
                       f"replayed {diff['replayed']!r}")
    if not as_json and result["note"]:
        click.echo(f"{application_id}: note: {result['note']}", err=True)
    if not result["match"]:
        raise SystemExit(1)
