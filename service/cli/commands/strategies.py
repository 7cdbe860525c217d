"""``flashloan strategies``: the champion, challenger and shadows, read and set."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import click

from service.cli.commands.audit import CLI_ACTOR, _open_store, _settings

if TYPE_CHECKING:
    from service.ops.settings import Settings
    from service.usecases.strategies import StrategyBook


@click.group()
def strategies() -> None:
    """Read and set the strategies in force."""


@contextmanager
def _book() -> Iterator[tuple[Settings, StrategyBook]]:
    """The settings and a strategy book on a database at head."""
    from scoring.governance.strategy import Strategy, StrategyPlan
    from scoring.online.model import DEFAULT_MODEL_VERSION, ModelError
    from scoring.online.policy import PolicyError, load_policy
    from service.usecases.engines import Engines
    from service.usecases.strategies import StrategyBook

    settings = _settings()
    engines = Engines(settings.model_search, settings.policy_search)
    with _open_store(settings) as store:
        try:
            # The settings' policy may be the operator's file, named by its path.
            policy = load_policy(settings.policy, settings.policy_search)
            engines.adopt_policy(policy)
            default = engines.engine(settings.model_version or DEFAULT_MODEL_VERSION,
                                     policy.version)
            yield settings, StrategyBook(store, engines, StrategyPlan(Strategy(
                default.model.version, default.policy.version)),
                refresh_s=settings.strategy_refresh_s, min_auc=settings.promotion_min_auc,
                signing_key=store.signing_key(settings.signing_key, settings.var_dir,
                                              production=settings.is_production))
        except (ModelError, PolicyError) as exc:
            raise click.ClickException(str(exc)) from None


@strategies.command("show")
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON.")
def show(as_json: bool) -> None:
    """Show the strategies in force and who set them, when and why."""
    with _book() as (_, book):
        stored = book.stored()
    if as_json:
        click.echo(json.dumps(stored, ensure_ascii=False, indent=2))
        return
    settings = " (the settings' model and policy" + ("" if stored["refused"] else "; none set")
    click.echo(f"plan {stored['seq']}" + (f", set by {stored['set_by']} at {stored['set_at']}: "
                                          f"{stored['reason']}" if stored["seq"] else
                                          f"{settings})"))
    for member in stored["members"]:
        share = f"  {member['share']:.0%} of applicants" if member["share"] is not None else ""
        click.echo(f"  {member['role']:<10}  {member['name']}{share}")
    if stored["refused"] is not None:
        refused = stored["refused"]
        click.echo(f"plan {refused['seq']} is stored but not in force ({refused['reason']}): "
                   f"{refused['problem']}")


@strategies.command("set")
@click.option("--champion", required=True, help="MODEL/POLICY, e.g. v1/2026.11")
@click.option("--challenger", help="MODEL/POLICY deciding a share of applicants")
@click.option("--share", type=float, default=0.0, show_default=True,
              help="the challenger's share of applicants, from 0 to 1")
@click.option("--shadow", "shadows", multiple=True, help="MODEL/POLICY deciding aside (repeat)")
@click.option("--reason", required=True, help="why the strategies change (audited)")
def set_(champion: str, challenger: str | None, share: float, shadows: tuple[str, ...],
         reason: str) -> None:
    """Set the strategies in force, after every model and policy passes its checks; every
    worker follows within FLASHLOAN_STRATEGY_REFRESH_S seconds."""
    from scoring.governance.strategy import StrategyError, StrategyPlan
    from service.usecases.promotion import PlansExhausted, PromotionRefused, promote

    with _book() as (settings, book):
        try:
            plan = StrategyPlan.from_dict({
                "champion": champion, "shadows": list(shadows),
                "challenger": ({"strategy": challenger, "share": share} if challenger
                               else None)})
            result = promote(book, plan, actor=CLI_ACTOR, reason=reason,
                             spec=book.default.champion.engine.model.spec,
                             min_auc=settings.promotion_min_auc)
        except (StrategyError, PlansExhausted) as exc:
            raise click.ClickException(str(exc)) from None
        except PromotionRefused as exc:
            lines = [f"  {where}: {problem}" for where, found in exc.problems.items()
                     for problem in found]
            raise click.ClickException("the strategies were not changed:\n"
                                       + "\n".join(lines)) from None
    click.echo(f"plan {result['seq']} set (audit record {result['audit_seq']}); every worker "
               f"decides under it within {result['effective_within_s']:g} s")
