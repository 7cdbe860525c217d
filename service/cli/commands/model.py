"""``flashloan synth``, ``train`` and ``model``: synthetic history, models, and a trained
model's reference and drift reference written again (``score`` is in its own module)."""

from __future__ import annotations

import shlex
import time
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    import pandas as pd


def _say(message: str) -> None:
    click.echo(f"[{time.strftime('%H:%M:%S')}] {message}", err=True)


def _table_path(ctx, param, value: Path | None) -> Path | None:
    if value is not None and value.suffix not in (".csv", ".parquet"):
        raise click.BadParameter(f"must end in .csv or .parquet; got {value.name}")
    return value


def _dask_address(ctx, param, value: str | None) -> str | None:
    if value is None:
        return None
    from scoring.batch.distributed import check_address

    try:
        return check_address(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


_dask_option = click.option(
    "--dask", "dask_address", metavar="local|tcp://HOST:PORT", callback=_dask_address,
    help="run on Dask: 'local' starts two worker processes here; tcp://HOST:PORT is a "
         "running scheduler")


@click.command()
@click.option("--rows", type=click.IntRange(min=1, max=10_000_000), required=True)
@click.option("--seed", type=int, required=True)
@click.option("--out", type=click.Path(path_type=Path), required=True, callback=_table_path,
              help="CSV or Parquet, by extension")
def synth(rows: int, seed: int, out: Path) -> None:
    """Write a synthetic history: raw source fields, the application, true_pd, defaulted."""
    frame = _synthesise(rows, seed)
    from scoring.batch.frames import write_table

    write_table(frame, out)
    _say(f"wrote {len(frame):,} rows to {out} (default rate {frame['defaulted'].mean():.2%})")


def _synthesise(rows: int, seed: int):
    import pandas as pd

    from datasources.stub.world import generate, population_ids

    _say(f"drawing {rows:,} applicants from seed {seed}")
    return pd.DataFrame(generate(population_ids(rows, seed)))


@click.command()
@click.option("--rows", type=click.IntRange(min=1000, max=10_000_000))
@click.option("--seed", type=int, default=7, show_default=True)
@click.option("--data", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              callback=_table_path, help="a history file instead of a synthetic one")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True)
@click.option("--version", "version", help="model version (default: the name of --out)")
@click.option("--without", type=click.Choice(["provident_fund", "social_security", "income_tax"]),
              help="train a fallback model for applications this income source did not "
                   "answer for (its version: the main one's, then -without-SCOPE)")
@click.option("--main", "main_version",
              help="with --without: the main model (version or directory) trained on the "
                   "same data and seed, whose AUC on the same held-out rows the card records")
@_dask_option
def train(rows: int | None, seed: int, data: Path | None, out: Path, version: str | None,
          without: str | None, main_version: str | None, dask_address: str | None) -> None:
    """Train a model and write model.json and card.json into --out."""
    if (rows is None) == (data is None):
        raise click.UsageError("give exactly one of --rows or --data")
    if main_version is not None and without is None:
        raise click.UsageError("--main is for a fallback model: give --without too")
    from scoring.batch.frames import read_table
    from scoring.online.model import ModelError, load_model
    from scoring.training.train import train as train_model

    try:
        baseline = load_model(main_version) if main_version is not None else None
    except ModelError as exc:
        raise click.ClickException(str(exc)) from None

    description: dict[str, str | int]
    if data is not None:
        history = read_table(data)
        description = {"source": "file", "file": data.name}
    else:
        assert rows is not None  # exactly one of the two was given
        history = _synthesise(rows, seed)
        description = {"source": "synthetic world (docs/synthetic-world.md)", "seed": seed}
    args = ["--data", str(data)] if data is not None else ["--rows", str(rows), "--seed", str(seed)]
    if data is not None:
        args += ["--seed", str(seed)]
    args += ["--out", str(out)] + (["--version", version] if version else [])
    args += (["--without", without] if without else []) + (
        ["--main", main_version] if main_version else [])
    args += ["--dask", dask_address] if dask_address else []
    command = "flashloan train " + " ".join(shlex.quote(a) for a in args)
    run = partial(train_model, history, out, version=version, seed=seed,
                  data_description=description, command=command, progress=_say,
                  without=without, baseline=baseline)
    try:
        if dask_address is None:
            card = run()
        else:
            from scoring.batch.distributed import ClusterError, open_client
            from scoring.training.dask_fit import DaskFit

            try:
                with open_client(dask_address) as client:
                    card = run(fit=DaskFit(client))
            except ClusterError as exc:
                raise click.ClickException(str(exc)) from None
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    m = card["metrics"]
    click.echo(f"model {card['version']}: test AUC {m['auc']:.4f}, oracle AUC {m['oracle_auc']}, "
               f"KS {m['ks']:.4f}, Gini {m['gini']:.4f}, Brier {m['brier']:.5f}")
    if "compared_with_main" in card:
        c = card["compared_with_main"]
        click.echo(f"main model {c['main_model']} on the same test rows: AUC {c['main_auc']:.4f} "
                   f"(lost {c['auc_lost']:.4f}, tolerance {c['tolerance']})")


@click.group()
def model() -> None:
    """Work on a trained model's artefacts."""


# Where a trained model's history comes from when its artefacts are written again.
_training_data_option = click.option(
    "--data", type=click.Path(exists=True, dir_okay=False, path_type=Path),
    callback=_table_path, help="the training data, for a model not trained on the synthetic world")


def _training_history(card: dict, data: Path | None) -> pd.DataFrame:
    """Return the history a model was trained on: ``data``, or its synthetic world again.

    The synthetic world is drawn again from the card's seed and rows; whoever uses the
    history checks it against the card's digest.
    """
    from scoring.batch.frames import read_table

    data_card = card["training_data"]
    if data is not None:
        return read_table(data)
    if str(data_card.get("source", "")).startswith("synthetic") and "seed" in data_card:
        return _synthesise(int(data_card["rows"]), int(data_card["seed"]))
    raise click.ClickException(f"model {card['version']} was trained on "
                               f"{data_card.get('file', 'a file')}: give it with --data")


@model.command("reference")
@click.argument("version")
@click.option("--main", "main_version",
              help="for a fallback: its main model, version or directory (default: the one "
                   "its card compares it with, looked for beside it first)")
@click.option("--policy", "policy_version",
              help="the policy whose approvals make the reference (default: current)")
@_training_data_option
def reference(version: str, main_version: str | None, policy_version: str | None,
              data: Path | None) -> None:
    """Write a trained model's reference.json and card fields again, without retraining.

    VERSION is a model version or directory. Its training data is rebuilt from the card
    (synthetic world: its seed and rows) or read from --data, and must match the card's
    digest; model.json and every other card field stay as they are.
    """
    from scoring.online.model import ModelArtifact, ModelError, model_dir
    from scoring.online.policy import PolicyError, load_policy
    from scoring.training.rebuild import rebuild_reference

    try:
        directory = model_dir(version)
        card = ModelArtifact(directory, with_reference=False).card
        policy = load_policy(policy_version)
        main = None
        if card.get("without"):
            name = main_version or card.get("compared_with_main", {}).get("main_model")
            if name is None:
                raise click.ClickException(f"model {card['version']} is a fallback: give its "
                                           "main model with --main")
            main = ModelArtifact(model_dir(name, (directory.parent,)), with_reference=False)
        history = _training_history(card, data)
        new_card = rebuild_reference(directory, history, policy=policy, main=main,
                                     progress=_say)
    except (ModelError, PolicyError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    named = new_card["reference"]
    click.echo(f"model {new_card['version']}: reference of {named['rows']} approved applicants "
               f"(policy {named['policy_version']}, mean margin {named['mean_margin']:.4f}), "
               f"sha256 {named['sha256']}")


@model.command("monitoring")
@click.argument("version")
@_training_data_option
def monitoring(version: str, data: Path | None) -> None:
    """Write a trained model's drift reference (its card's monitoring) again, without retraining.

    VERSION is a model version or directory. Its training data is rebuilt from the card
    (synthetic world: its seed and rows) or read from --data, and must match the card's
    digest; the training split's score, PD and features are binned with the model's own
    scores. model.json and every other card field stay as they are.
    """
    from scoring.online.model import ModelError, model_dir, read_card
    from scoring.training.rebuild import rebuild_monitoring

    try:
        directory = model_dir(version)
        history = _training_history(read_card(version), data)
        new_card = rebuild_monitoring(directory, history, progress=_say)
    except (ModelError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    section = new_card["monitoring"]
    click.echo(f"model {new_card['version']}: drift reference of the training split "
               f"({section['rows']:,} rows): score, PD and {len(section['features'])} features")
