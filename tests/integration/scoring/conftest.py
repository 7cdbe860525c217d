"""Run-wide fixtures of the scoring integration tests: what is costly is built once.

These tests run one after another on one xdist worker (the "models" load group,
tests/conftest.py), so a fixture of this package's scope is built once per run, and let go
(the cluster stopped, the histories dropped) when the folder's last test is done:

- each synthetic history (``rows``, ``seed``) is drawn once: the commands that draw one
  (``synth``, ``train --rows``, ``model reference`` and ``model monitoring`` of a model trained
  on the synthetic world) get a copy of the first draw, the same frame the world gives again
  (the commands check it against the card's data digest where a card names one);
- the small model (``train --rows 5000 --seed 4``) and its fallback without income_tax are
  trained once; a test that changes a model's folder copies it first;
- one local Dask cluster of two worker processes, opened as ``--dask local`` opens it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner
from distributed import Client

from scoring.batch.distributed import open_client
from service.cli.commands import model as model_commands
from service.cli.main import main

_DRAW = model_commands._synthesise
_HISTORIES: dict[tuple[int, int], pd.DataFrame] = {}


def _history(rows: int, seed: int) -> pd.DataFrame:
    """The synthetic world's history of ``rows`` applicants from ``seed``, drawn once per
    run; a copy, for the caller to change as it likes."""
    key = (rows, seed)
    if key not in _HISTORIES:
        _HISTORIES[key] = _DRAW(rows, seed)
    return _HISTORIES[key].copy()


@contextmanager
def histories_drawn_once() -> Iterator[None]:
    """Within the block, the commands take their synthetic history from ``_history``."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(model_commands, "_synthesise", _history)
        yield


@pytest.fixture(scope="package")
def synthetic_history() -> Callable[[int, int], pd.DataFrame]:
    """``synthetic_history(rows, seed)``: the history of the synthetic world, drawn once per
    run, as ``pd.DataFrame(generate(population_ids(rows, seed)))``; a copy to change."""
    return _history


@pytest.fixture(autouse=True)
def _histories_drawn_once() -> Iterator[None]:
    with histories_drawn_once():
        yield


@pytest.fixture
def fresh_draws(monkeypatch) -> None:
    """For a test about drawing itself: the commands draw their history again, every time."""
    monkeypatch.setattr(model_commands, "_synthesise", _DRAW)


@pytest.fixture(scope="package", autouse=True)
def _histories_dropped_at_the_end() -> Iterator[None]:
    yield
    _HISTORIES.clear()


def _train(out: Path, *extra: str) -> Path:
    with histories_drawn_once():
        result = CliRunner().invoke(main, ["train", "--rows", "5000", "--seed", "4",
                                           "--out", str(out), *extra])
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="package")
def small_model(tmp_path_factory) -> Path:
    """Model m: ``flashloan train --rows 5000 --seed 4``. Read it; copy it to change it."""
    return _train(tmp_path_factory.mktemp("small") / "m")


@pytest.fixture(scope="package")
def small_fallback(tmp_path_factory) -> Path:
    """Model m-without-income_tax: the same history trained ``--without income_tax``, without
    ``--main`` (so without a reference). Read it; copy it to change it."""
    return _train(tmp_path_factory.mktemp("small") / "m-without-income_tax",
                  "--without", "income_tax")


@pytest.fixture(scope="package")
def dask_client() -> Iterator[Client]:
    """A client of the run's one local cluster of two worker processes (``--dask local``'s)."""
    with open_client("local", n_workers=2) as client:
        yield client


@pytest.fixture(scope="package")
def dask_address(dask_client: Client) -> str:
    """The ``tcp://HOST:PORT`` of the run's local cluster's scheduler, for ``--dask``."""
    return dask_client.scheduler.address
