"""``flashloan applications``: deferred applications decided again by the scheduler, or listed."""

from __future__ import annotations

import json

import click

from service.cli.commands.keys import _database


@click.group()
def applications() -> None:
    """Recorded applications."""


@applications.command("retry-deferred")
@click.option("--channel", default=None, help="only this channel's applications")
@click.option("--limit", type=click.IntRange(min=1), default=None,
              help="decide at most this many applications in this run")
@click.option("--min-age-s", type=click.FloatRange(min=0), default=0.0, show_default=True,
              help="only applications deferred at least this many seconds ago")
@click.option("--list", "--dry-run", "list_only", is_flag=True,
              help="decide nothing: list, per channel, the deferred applications whose "
                   "consent is live and who can retry each (the scheduler or the channel)")
@click.option("--json", "as_json", is_flag=True, help="one JSON object per line")
def retry_deferred(channel: str | None, limit: int | None, min_age_s: float, list_only: bool,
                   as_json: bool) -> None:
    """Decide again every deferred application whose consent is live, for a scheduler.

    Each is retried as POST /v1/applications/{id}/retry would, under its own consent and as
    its channel (actor system:scheduler), with the applicant kept encrypted when it was
    deferred. One line per application: its id, channel and outcome (approved, declined,
    deferred again; erased: its consent was withdrawn or has expired, so the applicant kept
    for it is erased; failed, with the error). Applications deferred before applicants were
    kept are left to their channel. Exits 1 if any retry failed, 0 otherwise.
    """
    if list_only:
        _list_due(channel, min_age_s, limit, as_json)
        return
    from service.ops.settings import Settings, SettingsError
    from service.persistence.migrations import SchemaNotAtHead
    from service.web.app import build_wiring

    try:
        settings = Settings.from_env()
        wired = build_wiring(settings)
    except (SettingsError, SchemaNotAtHead) as exc:
        raise click.ClickException(str(exc)) from None
    try:
        report = wired.retries.retry_sealed(channel=channel, limit=limit, min_age_s=min_age_s)
    finally:
        wired.close()
    for item in report:
        if as_json:
            click.echo(json.dumps(item, ensure_ascii=False, sort_keys=True))
        else:
            why = item.get("reason") or item["error"]
            click.echo(f"{item['application_id']}  {item['channel']}  {item['outcome']}"
                       + (f" ({why})" if why else ""))
    if not report and not as_json:
        click.echo("no deferred application was due for a retry")
    if any(item["outcome"] == "failed" for item in report):
        raise SystemExit(1)


def _list_due(channel: str | None, min_age_s: float, limit: int | None, as_json: bool) -> None:
    from service.usecases.retries import deferred_due

    with _database() as (_, engine):
        due = deferred_due(engine, min_age_s=min_age_s, channel=channel)[:limit]
    if as_json:
        for item in due:
            click.echo(json.dumps(item, ensure_ascii=False, sort_keys=True))
        return
    by_channel: dict[str, list[dict]] = {}
    for item in due:
        by_channel.setdefault(item["channel"], []).append(item)
    if not by_channel:
        click.echo("no deferred application is due for a retry")
    for name, items in by_channel.items():
        click.echo(f"{name}: {len(items)} deferred application{'' if len(items) == 1 else 's'} "
                   "to retry")
        for item in items:
            click.echo(f"  {item['application_id']}  deferred {item['deferred_at']}  "
                       f"missing {','.join(item['missing_sources'])}  attempts "
                       f"{item['attempts']}  consent until {item['consent_expires_at']}  "
                       f"retried by {item['retried_by']}")
