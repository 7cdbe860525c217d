"""``flashloan backtest``: the decision log replayed through a candidate strategy."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from service.cli.commands.audit import _open_store, _settings


def _moment(ctx: click.Context, param: click.Parameter, value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"must be an ISO 8601 date or time; got {value!r}") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


@click.command()
@click.option("--strategy", required=True, help="the candidate MODEL/POLICY, e.g. v1/2026.11")
@click.option("--since", callback=_moment, help="first decisions replayed (ISO 8601, UTC if "
                                                "no offset); default: the log's start")
@click.option("--until", callback=_moment, help="end of the decisions replayed (exclusive); "
                                                "default: now")
@click.option("--lgd", type=click.FloatRange(0, 1), default=1.0, show_default=True,
              help="loss given default for the expected loss")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="write the report (self-contained HTML) here")
@click.option("--json", "json_out", type=click.Path(dir_okay=False, path_type=Path),
              help="write the summary as JSON here")
@click.option("--dask", help="decide on a Dask cluster: 'local' or tcp://host:port")
def backtest(strategy: str, since: datetime | None, until: datetime | None, lgd: float,
             out: Path | None, json_out: Path | None, dask: str | None) -> None:
    """Replay the logged decisions of a window through a candidate strategy and say what
    would change: approval rate, swaps, expected loss, realised defaults, score PSI."""
    from scoring.governance.strategy import Strategy, StrategyError
    from scoring.online.model import ModelError
    from scoring.online.policy import PolicyError
    from service.usecases.backtests.run import Backtest, run_backtest
    from service.usecases.engines import Engines
    from service.web.backtest_report import report_html

    started = time.perf_counter()
    settings = _settings()
    engines = Engines(settings.model_search, settings.policy_search)
    try:
        asked = Backtest(Strategy.parse(strategy, "--strategy"), since, until, lgd)
    except (StrategyError, ValueError) as exc:
        raise click.UsageError(str(exc)) from None
    with _open_store(settings) as store:
        try:
            result = run_backtest(store, engines, asked, render=report_html, dask=dask,
                                  progress=lambda text: click.echo(text, err=True))
        except (ModelError, PolicyError, ValueError) as exc:
            raise click.ClickException(str(exc)) from None
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(result.report, encoding="utf-8")
    if json_out is not None:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(result.summary, ensure_ascii=False, indent=2),
                            encoding="utf-8")
    click.echo(summary_lines(result.summary, out, time.perf_counter() - started))


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _money(value: float | None) -> str:
    return "-" if value is None else f"¥{value:,.0f}"


def summary_lines(summary: dict[str, Any], out: Path | None, elapsed_s: float) -> str:
    """A backtest's main figures in a few aligned lines."""
    approval, swap, loss = summary["approval"], summary["swap"], summary["expected_loss"]
    psi = summary["score_shift"]["psi"]
    lines = [
        ("strategy", f"{summary['strategy']} over {summary['rows']:,} logged decisions"),
        ("approval rate", f"{_rate(approval['recorded'])} recorded, "
                          f"{_rate(approval['candidate'])} candidate"
                          + (f" ({approval['change_pp']:+.1f} pp)"
                             if approval["change_pp"] is not None else "")),
        ("swaps", f"{swap['swap_in']:,} in (declined → approved), "
                  f"{swap['swap_out']:,} out (approved → declined)"),
        ("expected loss", f"{_money(loss['recorded'])} recorded, {_money(loss['candidate'])} "
                          f"candidate (LGD {summary['lgd']:g})"),
        ("score PSI", "-" if psi is None else f"{psi:.4f} ({summary['score_shift']['level']})"),
        ("changed", f"{summary['changes']['count']:,} decisions"),
    ]
    if out is not None:
        lines.append(("report", str(out)))
    lines.append(("elapsed", f"{elapsed_s:.1f} s"))
    width = max(len(label) for label, _ in lines) + 2
    return "\n".join(f"{label:<{width}}{value}" for label, value in lines)
