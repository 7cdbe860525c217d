"""The synthetic world: deterministic, and shaped like a real applicant population."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from datasources.records import RECORD_TYPES
from datasources.stub.world import (
    DRAWS,
    PD_DECIMALS,
    generate,
    person_draws,
    population_ids,
    records_at,
)
from scoring.training.train import frame_digest


@pytest.fixture(scope="module")
def world() -> pd.DataFrame:
    return pd.DataFrame(generate(population_ids(40_000, 5)))


def test_the_same_seed_gives_the_same_population():
    a = pd.DataFrame(generate(population_ids(300, 9)))
    b = pd.DataFrame(generate(population_ids(300, 9)))
    pd.testing.assert_frame_equal(a, b)
    c = pd.DataFrame(generate(population_ids(300, 10)))
    assert not a["national_id"].equals(c["national_id"])


def test_the_same_id_gives_the_same_person_whatever_its_company():
    ids = population_ids(50, 1)
    alone = generate([ids[7]])
    together = generate(ids)
    for column, values in alone.items():
        assert values[0] == together[column][7] or (
            isinstance(values[0], float) and np.isnan(values[0])
            and np.isnan(together[column][7])), column


def test_records_are_valid_typed_records():
    cols = generate(population_ids(200, 2))
    for row in range(200):
        records = records_at(cols, row)
        assert set(records) == set(RECORD_TYPES)
        for scope, record in records.items():
            assert isinstance(record, RECORD_TYPES[scope])


def test_base_default_rate_is_between_2_and_8_percent(world):
    assert 0.02 <= world["defaulted"].mean() <= 0.08
    assert world["true_pd"].mean() == pytest.approx(world["defaulted"].mean(), abs=0.005)


def test_about_a_third_have_no_provident_fund_and_some_no_tax_records(world):
    assert 0.25 <= 1 - world["pf_has_account"].mean() <= 0.42
    assert 0.05 <= 1 - world["tax_has_record"].mean() <= 0.30


def test_incomes_are_log_normal_and_rise_with_city_tier(world):
    salary = world.loc[world["tax_has_record"], "tax_monthly_salary_avg_12m"]
    logs = np.log(salary)
    assert abs(pd.Series(logs).skew()) < 0.5 < pd.Series(salary).skew()
    tier1 = world["ss_city"].isin(["北京", "上海", "广州", "深圳"])
    enrolled = world["ss_enrolled"].astype(bool)
    assert (world.loc[tier1 & enrolled, "ss_contribution_base"].median()
            > world.loc[~tier1 & enrolled, "ss_contribution_base"].median())


def test_income_sources_agree_with_noise_and_a_few_percent_disagree(world):
    both = world["pf_has_account"].astype(bool) & world["tax_has_record"].astype(bool)
    ratio = world.loc[both, "pf_monthly_base"] / world.loc[both, "tax_monthly_salary_avg_12m"]
    assert 0.7 < ratio.median() < 1.2
    assert 0.01 < (ratio > 1.5).mean() < 0.08


def test_thin_files_are_common_among_the_young(world):
    young = world["age"] < 26
    thin = ~world["cr_has_record"].astype(bool)
    assert thin[young].mean() > 2 * thin[~young].mean()


def test_court_records_are_rare_but_strongly_adverse(world):
    listed = world["court_dishonest_debtor"].astype(bool)
    assert 0.001 < listed.mean() < 0.03
    assert world.loc[listed, "true_pd"].mean() > 4 * world.loc[~listed, "true_pd"].mean()


def test_true_risk_is_non_linear_in_debt_and_utilisation(world):
    dti = world["cr_monthly_debt_payment"] / world["tax_monthly_salary_avg_12m"].where(
        world["tax_has_record"].astype(bool))
    high_dti = dti > dti.quantile(0.8)
    high_util = world["cr_card_utilization"] > 0.6
    logit = np.log(world["true_pd"] / (1 - world["true_pd"]))

    def mean(mask):
        return logit[mask].mean()

    interaction = (mean(high_dti & high_util) - mean(high_dti & ~high_util)
                   - mean(~high_dti & high_util) + mean(~high_dti & ~high_util))
    assert interaction > 0.1


# The decimals each float column is written with (money to the fen or coarser).
NATURAL_DECIMALS = {
    "pf_monthly_base": 2, "pf_contribution_rate": 2, "pf_balance": 2, "pf_loan_balance": -2,
    "ss_contribution_base": 2, "tax_annual_income_last_year": 2,
    "tax_monthly_salary_avg_12m": 2, "tax_tax_paid_12m": 2, "tax_business_income_12m": 2,
    "cr_card_limit_total": -2, "cr_card_utilization": 4, "cr_loan_balance": 2,
    "cr_monthly_debt_payment": 2, "court_enforcement_amount": -2, "amount": -3,
    "true_pd": PD_DECIMALS,
}


def test_every_number_is_written_at_its_natural_precision(world):
    floats = {name for name in world.columns if world[name].dtype.kind == "f"}
    assert floats == set(NATURAL_DECIMALS), "a new float column needs its precision"
    for name, decimals in NATURAL_DECIMALS.items():
        values = world[name].to_numpy()
        np.testing.assert_array_equal(values, np.round(values, decimals), err_msg=name)


def test_the_outcome_is_drawn_from_the_written_probability():
    ids = population_ids(5_000, 4)
    cols = generate(ids)
    draw = person_draws(ids)[:, DRAWS.index("default")]
    np.testing.assert_array_equal(cols["defaulted"], (draw < cols["true_pd"]).astype(np.int64))


# The world is drawn in the child, under its kernels, and sent back as it is (pickled numpy
# arrays keep every bit); its digest is taken here, so that the child imports only the world.
_WORLD_SCRIPT = """
import pickle, sys
from datasources.stub.world import generate, population_ids
from numpy._core._multiarray_umath import __cpu_dispatch__, __cpu_features__
pickle.dump({"world": generate(population_ids(20_000, 3)),
             "dispatch": [f for f in __cpu_dispatch__ if __cpu_features__.get(f)]},
            sys.stdout.buffer)
"""


def _world_digest(disabled: str | None) -> dict:
    env = dict(os.environ)
    env.pop("NPY_DISABLE_CPU_FEATURES", None)
    if disabled:
        env["NPY_DISABLE_CPU_FEATURES"] = disabled
    done = subprocess.run([sys.executable, "-c", _WORLD_SCRIPT], env=env, check=True,
                          capture_output=True, timeout=240)
    drawn = pickle.loads(done.stdout)
    return {"digest": frame_digest(pd.DataFrame(drawn["world"])), "dispatch": drawn["dispatch"]}


@pytest.mark.slow
def test_the_world_is_the_same_to_the_bit_whichever_simd_kernels_numpy_runs():
    # numpy picks exp/log kernels by CPU (AVX2, AVX-512 on x86-64); switching off every
    # kernel it would dispatch to here gives the baseline ones, as on an older CPU.
    best = _world_digest(None)
    baseline = _world_digest(" ".join(best["dispatch"]) or None)
    assert baseline["dispatch"] == []
    assert baseline["digest"] == best["digest"]
    here = frame_digest(pd.DataFrame(generate(population_ids(20_000, 3))))
    assert here == best["digest"]
