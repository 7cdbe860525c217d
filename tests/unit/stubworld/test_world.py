"""The synthetic world: deterministic, and shaped like a real applicant population."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from datasources.records import RECORD_TYPES
from datasources.stub.world import generate, population_ids, records_at


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
