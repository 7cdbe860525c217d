"""Batch scoring and training on a real Dask cluster (two local worker processes): decisions
the same to the last bit as on one machine, the commands' --dask, and bad addresses."""

from __future__ import annotations

import json
import socket
from functools import partial

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from datasources.records import raw_columns
from datasources.stub.world import generate, population_ids
from scoring.batch.distributed import (
    ClusterError,
    EnginePlugin,
    decide_partitioned,
    open_client,
    plan_partitions,
)
from scoring.batch.frames import score_frame
from scoring.online.engine import DecisionEngine
from scoring.online.features import features_for_frame
from scoring.online.model import ModelArtifact, ModelError, load_model
from scoring.online.policy import load_policy
from scoring.online.spec import load_spec
from service.cli.main import main

SPEC = load_spec()
ENGINE_PREFIX = "flashloan-engine-"


@pytest.fixture(scope="module")
def client(dask_client):
    """A client of the run's one local cluster of two worker processes (conftest.py)."""
    return dask_client


@pytest.fixture(scope="module")
def applications() -> pd.DataFrame:
    """Synthetic applications, some with unknown features: a source that did not answer, a
    missing utilisation; an index that is not 0..n-1."""
    frame = pd.DataFrame(generate(population_ids(3000, 31)))
    frame.index = pd.RangeIndex(10_000, 10_000 + 2 * len(frame), 2, name="row")
    for column in raw_columns("social_security"):
        # As a file read back holds them: numbers as floats, flags as objects, with gaps.
        kind = frame[column].dtype.kind
        if kind in "bi":
            frame[column] = frame[column].astype(object if kind == "b" else float)
        frame.loc[frame.index[::5], column] = None
    frame.loc[frame.index[1::7], "cr_card_utilization"] = np.nan
    return frame


def _engines(dask_worker) -> dict[str, int]:
    """Each decision engine a worker holds, by plugin name, as its object's identity."""
    return {name: id(plugin.engine) for name, plugin in dask_worker.plugins.items()
            if name.startswith(ENGINE_PREFIX)}


def test_partitions_decide_and_explain_exactly_as_one_frame(client, applications):
    x = features_for_frame(applications).to_numpy()
    assert np.isnan(x).any(axis=1).mean() > 0.2, "the input must have unknown features"
    engine = DecisionEngine(load_model(nthread=0), load_policy())
    expected = score_frame(applications, engine, explain=True)
    # Through a second client at the scheduler's address: the tcp:// path.
    with open_client(client.scheduler.address) as remote:
        decided = decide_partitioned(applications, partial(score_frame, explain=True),
                                     client=remote, model_version=None, policy_version=None,
                                     npartitions=4)
    pd.testing.assert_frame_equal(decided, expected, check_exact=True)
    assert decided.index.equals(applications.index)
    assert {"outcome", "score", "pd", "reasons"} <= set(decided.columns)
    assert sum(c.startswith("shap_") for c in decided.columns) == len(engine.model.feature_names)
    assert set(decided["outcome"]) >= {"approved", "declined"}


def test_each_worker_builds_its_engine_once_for_every_partition_and_call(client,
                                                                         applications):
    part = applications.iloc[:400]
    first = decide_partitioned(part, score_frame, client=client, model_version=None,
                               policy_version=None, npartitions=8)
    built = client.run(_engines)
    again = decide_partitioned(part, score_frame, client=client, model_version=None,
                               policy_version=None, npartitions=3)
    pd.testing.assert_frame_equal(again, first, check_exact=True)
    assert len(built) == 2 and all(len(engines) == 1 for engines in built.values())
    assert client.run(_engines) == built


def test_a_worker_with_another_model_refuses_it(client):
    plugin = EnginePlugin(None, None, (), "0" * 64, load_policy().digest)
    with pytest.raises(ModelError, match="SHA-256"):
        client.register_plugin(plugin, name=plugin.name)
    client.unregister_worker_plugin(plugin.name)
    assert all(plugin.name not in engines for engines in client.run(_engines).values())


def test_partitions_are_one_per_thread_or_per_hundred_thousand_rows(client):
    assert plan_partitions(10, client) == 2
    assert plan_partitions(250_001, client) == 3
    assert plan_partitions(3, client, 8) == 3
    assert plan_partitions(0, client) == 1
    with pytest.raises(ValueError, match="npartitions must be at least 1; got 0"):
        plan_partitions(10, client, 0)


def test_the_score_command_on_dask_writes_the_same_file(tmp_path, dask_address):
    runner = CliRunner()
    data = tmp_path / "in.csv"
    assert runner.invoke(main, ["synth", "--rows", "2500", "--seed", "22",
                                "--out", str(data)]).exit_code == 0
    alone = runner.invoke(main, ["score", "--in", str(data), "--out", str(tmp_path / "a.csv"),
                                 "--explain"])
    assert alone.exit_code == 0, alone.output
    on_dask = runner.invoke(main, ["score", "--in", str(data), "--out",
                                   str(tmp_path / "d.csv"), "--explain", "--dask",
                                   dask_address, "--partitions", "3"])
    assert on_dask.exit_code == 0, on_dask.output
    assert (tmp_path / "d.csv").read_bytes() == (tmp_path / "a.csv").read_bytes()
    assert f"ran on        Dask ({dask_address}), 3 partitions on 2 workers" in on_dask.stdout
    assert "ran on" not in alone.stdout


@pytest.fixture(scope="module")
def trained(small_model, tmp_path_factory):
    """The same small history trained on one machine (the run's model m) and on a local Dask
    cluster. This training is the one command of the run that starts its own cluster with
    ``--dask local``; every other Dask run here uses the run's cluster at its address."""
    folder = tmp_path_factory.mktemp("models")
    result = CliRunner().invoke(main, ["train", "--rows", "5000", "--seed", "4",
                                       "--out", str(folder / "dask"), "--dask", "local"])
    assert result.exit_code == 0, result.output
    return small_model, folder / "dask"


@pytest.mark.slow
def test_training_on_dask_gives_a_model_like_the_single_machines(trained):
    alone, dask = (json.loads((f / "card.json").read_text(encoding="utf-8")) for f in trained)
    assert dask["trained_on"] == {"on": "dask", "workers": 2, "threads": 2}
    assert alone["trained_on"] == {"on": "single machine"}
    assert dask["command"].endswith("--dask local")
    assert dask["monotone_constraints"] == alone["monotone_constraints"] == [
        f.monotone for f in SPEC.features]
    same = ("num_boost_round",)
    assert {k: v for k, v in dask["params"].items() if k not in same} == {
        k: v for k, v in alone["params"].items() if k not in same}
    assert dask["training_data"] == alone["training_data"]
    assert list(dask) == list(alone)
    assert abs(dask["metrics"]["auc"] - alone["metrics"]["auc"]) < 0.02


@pytest.mark.slow
def test_a_model_trained_on_dask_loads_and_keeps_its_monotone_directions(trained):
    model = ModelArtifact(trained[1])
    assert model.reference is not None
    base = features_for_frame(pd.DataFrame(generate(population_ids(20, 5)))).to_numpy()
    for j, feature in enumerate(SPEC.features):
        if feature.monotone == 0:
            continue
        grid = np.linspace(0, np.nanmax([np.nanmax(base[:, j]), 1.0]) * 1.5, 12)
        for row in base:
            x = np.tile(row, (len(grid), 1))
            x[:, j] = grid
            steps = np.diff(model.predict_margin(x)) * feature.monotone
            assert np.all(steps >= -1e-6), f"{feature.name} breaks its monotone direction"


@pytest.mark.parametrize("command", [["score", "--in", "IN", "--out", "OUT"],
                                     ["train", "--rows", "1000", "--out", "OUT"]])
@pytest.mark.parametrize("address", ["foo", "tcp://127.0.0.1", "http://127.0.0.1:8786",
                                     "tcp://:8786"])
def test_a_bad_address_is_refused_before_anything_runs(tmp_path, command, address):
    (tmp_path / "in.csv").write_text("purpose,amount,term_months\n", encoding="utf-8")
    args = [str(tmp_path / "in.csv") if a == "IN" else str(tmp_path / "out") + ".csv"
            if a == "OUT" else a for a in command]
    result = CliRunner().invoke(main, [*args, "--dask", address])
    assert result.exit_code == 2
    assert "Invalid value for '--dask'" in result.output
    assert f"dask address must be 'local' or 'tcp://HOST:PORT'; got {address!r}" in result.output
    assert not (tmp_path / "out.csv").exists()


def test_partitions_need_dask(tmp_path):
    (tmp_path / "in.csv").write_text("purpose,amount,term_months\n", encoding="utf-8")
    result = CliRunner().invoke(main, ["score", "--in", str(tmp_path / "in.csv"),
                                       "--out", str(tmp_path / "out.csv"), "--partitions", "2"])
    assert result.exit_code == 2
    assert "--partitions is for a Dask run: give --dask too" in result.output


def test_no_scheduler_at_the_address_is_a_cluster_error():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    address = f"tcp://127.0.0.1:{port}"
    with pytest.raises(ClusterError, match=f"no Dask cluster at {address}"), \
            open_client(address, timeout=1):
        pass
