"""Feature building: the online and the batch path agree; missing sources stay missing."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from datasources.records import (
    CourtRecord,
    CreditReportRecord,
    IncomeTaxRecord,
    ProvidentFundRecord,
    SocialSecurityRecord,
    flatten,
)
from scoring.online.features import features_for_application, features_for_frame
from scoring.online.spec import load_spec
from tests.strategies import applications, source_records

SPEC = load_spec()


def _frame(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame([{**flatten(r["records"]), **r["application"]} for r in rows])


@settings(max_examples=150, deadline=None)
@given(st.lists(st.fixed_dictionaries({"records": source_records(),
                                        "application": applications}),
                min_size=1, max_size=6))
def test_online_and_batch_features_agree(rows):
    online = np.vstack([features_for_application(r["records"], **r["application"])
                        for r in rows])
    batch = features_for_frame(_frame(rows)).to_numpy()
    np.testing.assert_allclose(online, batch, rtol=0, atol=0, equal_nan=True)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.fixed_dictionaries({"records": source_records(),
                                        "application": applications}),
                min_size=1, max_size=4))
def test_batch_features_survive_a_csv_round_trip(rows):
    frame = _frame(rows)
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False)
    buffer.seek(0)
    reread = pd.read_csv(buffer)
    np.testing.assert_allclose(features_for_frame(frame).to_numpy(),
                               features_for_frame(reread).to_numpy(), rtol=1e-12,
                               equal_nan=True)


def _full_records():
    return {
        "provident_fund": ProvidentFundRecord(True, "normal", "A", "soe", 10000.0, 0.12, 60, 48,
                                              80000.0, "2026-10", 0, 0.0),
        "social_security": SocialSecurityRecord(True, 9000.0, 60, 48, "A", 0, "杭州", True,
                                                "2026-10"),
        "income_tax": IncomeTaxRecord(True, 120000.0, 9500.0, 3000.0, 1, 12, 0.0),
        "credit_report": CreditReportRecord(True, 2, 50000.0, 0.3, 1, 20000.0, 2000.0, False, 0,
                                            0, 1, 2, 60, False),
        "court_records": CourtRecord.clean(),
    }


def _vector(records, amount=24000.0, term=12) -> dict[str, float]:
    return dict(zip(SPEC.names, features_for_application(records, amount, term), strict=True))


def test_cross_source_income_is_the_median_of_three():
    v = _vector(_full_records())
    assert v["income_verified_monthly"] == 9500.0
    assert v["income_sources"] == 3
    assert v["income_dispersion"] == 10000.0 / 9000.0
    assert v["employer_agreement"] == 1.0
    assert v["debt_to_income"] == 2000.0 / 9500.0
    assert v["requested_to_income"] == 24000.0 / (12 * 9500.0)


def test_two_income_sources_take_the_lower_and_employers_can_disagree():
    records = _full_records()
    records["income_tax"] = IncomeTaxRecord.no_record()
    records["social_security"] = SocialSecurityRecord(True, 9000.0, 60, 48, "B", 0, "杭州", True,
                                                      "2026-10")
    v = _vector(records)
    assert v["income_verified_monthly"] == 9000.0
    assert v["income_sources"] == 2
    assert v["employer_agreement"] == 0.0
    assert v["tax_has_record"] == 0.0
    assert np.isnan(v["tax_monthly_salary"])


def test_a_missing_source_gives_missing_values_not_zeros():
    records = _full_records()
    records["credit_report"] = None
    records["provident_fund"] = None
    v = _vector(records)
    for name in SPEC.names:
        feature = SPEC.by_name(name)
        if feature.group in ("credit_report", "provident_fund"):
            assert np.isnan(v[name]), name
    assert np.isnan(v["debt_to_income"])
    assert np.isnan(v["employer_agreement"])
    assert v["income_sources"] == 2


def test_no_account_is_an_answer_not_a_missing_source():
    records = _full_records()
    records["provident_fund"] = ProvidentFundRecord.no_account()
    v = _vector(records)
    assert v["pf_has_account"] == 0.0
    assert v["pf_months_continuous"] == 0.0
    assert np.isnan(v["pf_monthly_base"])


def test_the_frame_path_names_missing_columns():
    frame = _frame([{"records": _full_records(), "application": {"amount": 1.0,
                                                                  "term_months": 3}}])
    try:
        features_for_frame(frame.drop(columns=["cr_cards"]))
    except ValueError as exc:
        assert "cr_cards" in str(exc)
    else:  # pragma: no cover
        raise AssertionError("a missing column must be refused")
