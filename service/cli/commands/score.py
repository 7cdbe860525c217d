"""``flashloan score``: a whole file of applications decided, on pandas or on Dask."""

from __future__ import annotations

import math
import time
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import click

from service.cli.commands.model import _dask_option, _say, _table_path

if TYPE_CHECKING:
    import pandas as pd


@click.command()
@click.option("--in", "in_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              required=True, callback=_table_path)
@click.option("--out", type=click.Path(path_type=Path), required=True, callback=_table_path)
@click.option("--explain", is_flag=True, help="add x_<feature> and shap_<feature> columns")
@click.option("--model", "model_version", help="model version or directory (default: shipped)")
@click.option("--policy", "policy_version", help="policy version or file (default: current)")
@_dask_option
@click.option("--partitions", type=click.IntRange(min=1),
              help="with --dask: partitions of the file (default: one per worker thread or per "
                   "100,000 rows, whichever is more)")
def score(in_path: Path, out: Path, explain: bool, model_version: str | None,
          policy_version: str | None, dask_address: str | None, partitions: int | None) -> None:
    """Decide every application in a file, vectorised, optionally with contributions.

    With --dask, the file is cut into partitions decided in parallel on a Dask cluster; the
    file written is the same to the last bit.
    """
    if partitions is not None and dask_address is None:
        raise click.UsageError("--partitions is for a Dask run: give --dask too")
    started = time.perf_counter()
    from scoring.batch.frames import read_table, score_frame, write_table
    from scoring.online.engine import DecisionEngine
    from scoring.online.model import ModelError, load_model
    from scoring.online.policy import PolicyError, load_policy

    ran_on = None
    try:
        frame = read_table(in_path)
        if dask_address is None:
            engine = DecisionEngine(load_model(model_version, nthread=0),
                                    load_policy(policy_version))
            model, policy = engine.model.version, engine.policy.version
            _say(f"scoring {len(frame):,} rows with model {model}, policy {policy}")
            result = score_frame(frame, engine, explain=explain)
        else:
            result, model, policy, ran_on = _score_on_dask(
                frame, dask_address, explain=explain, model_version=model_version,
                policy_version=policy_version, partitions=partitions)
    except (ModelError, PolicyError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    write_table(result, out)
    click.echo(score_summary(result, out, time.perf_counter() - started,
                             model=model, policy=policy, ran_on=ran_on))


def _score_on_dask(frame: pd.DataFrame, address: str, *, explain: bool,
                   model_version: str | None, policy_version: str | None,
                   partitions: int | None) -> tuple[pd.DataFrame, str, str, str]:
    """Decide a file's rows in partitions on Dask: the result, model, policy and where."""
    from scoring.batch.distributed import (
        ClusterError,
        cluster_size,
        decide_partitioned,
        open_client,
        plan_partitions,
    )
    from scoring.batch.frames import score_frame
    from scoring.online.model import DEFAULT_MODEL_VERSION, read_card
    from scoring.online.policy import load_policy

    model = read_card(model_version or DEFAULT_MODEL_VERSION)["version"]
    policy = load_policy(policy_version).version
    try:
        with open_client(address) as client:
            workers, _ = cluster_size(client)
            parts = plan_partitions(len(frame), client, partitions)
            _say(f"scoring {len(frame):,} rows with model {model}, policy {policy} on Dask "
                 f"({address}): {parts} partitions, {workers} workers")
            result = decide_partitioned(frame, partial(score_frame, explain=explain),
                                        client=client, model_version=model_version,
                                        policy_version=policy_version, npartitions=parts)
    except ClusterError as exc:
        raise click.ClickException(str(exc)) from None
    where = f"Dask ({address}), {parts} partitions on {workers} workers"
    return result, model, policy, where


OUTCOMES = ("approved", "declined", "deferred")


def score_summary(result: pd.DataFrame, out: Path, elapsed_s: float, *, model: str,
                  policy: str, ran_on: str | None = None) -> str:
    """Say in a few aligned lines what a batch decided, where it ran and where it went."""
    rows = len(result)
    counts = result["outcome"].value_counts()
    approved = result.loc[result["outcome"] == "approved", "credit_limit"]
    digits = len(f"{rows:,}")
    lines = [("rows scored", f"{rows:,} with model {model} and policy {policy}")]
    if ran_on is not None:
        lines.append(("ran on", ran_on))
    for outcome in (*OUTCOMES, *sorted(set(counts.index) - set(OUTCOMES))):
        n = int(counts.get(outcome, 0))
        lines.append((outcome, f"{n:>{digits},}  {n / max(rows, 1):6.1%}"))
    mean_pd = float(result["pd"].mean())
    lines.append(("mean PD", "-" if math.isnan(mean_pd) else f"{mean_pd:.2%}"))
    lines.append(("credit lines", f"¥{approved.sum():,.0f} in total, ¥{approved.mean():,.0f} "
                  "per approval" if len(approved) else "none (no approval)"))
    lines.append(("written to", str(out)))
    lines.append(("elapsed", f"{elapsed_s:.1f} s"))
    width = max(len(label) for label, _ in lines) + 2
    return "\n".join(f"{label:<{width}}{value}" for label, value in lines)
