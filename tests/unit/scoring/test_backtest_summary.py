"""A backtest's summary, worked out by hand on seven decisions, recorded beside a candidate's."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from scoring.batch.backtest import REPLAYED, summarise
from scoring.governance.drift import sample_shift

NAN = math.nan
# application, recorded (outcome, pd, line, rate, grade, score, reasons), defaulted,
# candidate (outcome, pd, line, rate, grade, score, reasons)
DECISIONS = [
    ("a1", ("approved", 0.02, 10_000, 0.096, "B", 620, "TX02F"), 1.0,
     ("approved", 0.02, 10_000, 0.096, "B", 620, "TX02F")),
    ("a2", ("approved", 0.05, 20_000, 0.156, "D", 590, ""), 0.0,
     ("declined", 0.09, 0, NAN, "F", 560, "CR05;PF03")),
    ("a3", ("approved", 0.01, 50_000, 0.072, "A", 650, "CR02F"), NAN,
     ("approved", 0.01, 40_000, 0.072, "A", 650, "CR02F")),
    ("a4", ("declined", 0.10, 0, NAN, "F", 550, "K04;CR05"), NAN,
     ("approved", 0.04, 8_000, 0.156, "D", 640, "")),
    # Declined, overturned by a person, and defaulted: its outcome is known.
    ("a5", ("declined", 0.20, 0, NAN, "F", 500, "K01"), 1.0,
     ("declined", 0.20, 0, NAN, "F", 500, "K01")),
    # The same rate, but for the last bits: unchanged.
    ("a6", ("approved", 0.03, 30_000, 0.126, "C", 610, ""), 0.0,
     ("approved", 0.03, 30_000, 0.126 + 1e-12, "C", 610, "")),
    ("a7", ("deferred", 0.06, 0, NAN, "E", 580, ""), NAN,
     ("approved", 0.06, 5_000, 0.18, "E", 580, "")),
]
FIELDS = ("outcome", "pd", "credit_limit", "annual_rate", "grade", "score", "reason_codes")


def frames(decisions=DECISIONS, index=None) -> tuple[pd.DataFrame, pd.DataFrame]:
    frame = pd.DataFrame(
        [{"application_id": aid, "decided_at": f"2026-11-0{i + 1}T10:00:00.000000Z",
          "strategy": "v1/2026.11", **dict(zip(FIELDS, rec, strict=True)), "defaulted": d}
         for i, (aid, rec, d, _) in enumerate(decisions)], index=index)
    replayed = pd.DataFrame(
        [{**{f"c_{k}": v for k, v in zip(FIELDS, cand, strict=True)}, "c_note": ""}
         for *_, cand in decisions], index=frame.index)
    return frame, replayed[list(REPLAYED)]


def test_every_figure_is_what_the_decisions_imply():
    frame, replayed = frames(index=[70, 10, 60, 20, 50, 30, 40])
    s = summarise(frame, replayed, lgd=0.5, changed_limit=2)
    json.dumps(s, allow_nan=False)
    assert s["rows"] == 7 and s["recorded_strategies"] == {"v1/2026.11": 7}
    assert s["approval"] == {"recorded": pytest.approx(4 / 7), "candidate": pytest.approx(5 / 7),
                             "recorded_count": 4, "candidate_count": 5,
                             "change_pp": pytest.approx(100 / 7)}
    assert s["swap"]["matrix"] == {
        "approved": {"approved": 3, "declined": 1, "deferred": 0},
        "declined": {"approved": 1, "declined": 1, "deferred": 0},
        "deferred": {"approved": 1, "declined": 0, "deferred": 0}}
    assert (s["swap"]["swap_in"], s["swap"]["swap_out"]) == (1, 1)
    # Recorded approvals a1, a2, a3, a6: 200 + 1000 + 500 + 900 = 2600, times LGD 0.5.
    # Candidate approvals a1, a3, a4, a6, a7: 200 + 400 + 320 + 900 + 300 = 2120.
    assert s["expected_loss"] == {"recorded": pytest.approx(1300.0),
                                  "candidate": pytest.approx(1060.0),
                                  "change": pytest.approx(-240.0)}
    assert s["realised_default"] == {
        "recorded_approvals": {"decisions": 4, "with_outcome": 3, "defaults": 1,
                               "rate": pytest.approx(1 / 3)},
        "approved_by_both": {"decisions": 3, "with_outcome": 2, "defaults": 1, "rate": 0.5},
        "swap_in": {"decisions": 1, "with_outcome": 0, "defaults": 0, "rate": None},
        "swap_out": {"decisions": 1, "with_outcome": 1, "defaults": 0, "rate": 0.0}}
    assert s["means"] == {"pd": {"recorded": pytest.approx(0.47 / 7),
                                 "candidate": pytest.approx(0.45 / 7)},
                          "line": {"recorded": 27_500.0, "candidate": 18_600.0}}
    # a2 (outcome), a3 (line), a4 (outcome), a7 (outcome); the first two in the frame's order.
    assert s["changes"]["count"] == 4
    assert s["changes"]["decisions"] == [
        {"application_id": "a2", "decided_at": "2026-11-02T10:00:00.000000Z",
         "recorded": {"outcome": "approved", "credit_limit": 20_000.0, "annual_rate": 0.156,
                      "grade": "D", "reason_codes": []},
         "candidate": {"outcome": "declined", "credit_limit": 0.0, "annual_rate": None,
                       "grade": "F", "reason_codes": ["CR05", "PF03"], "note": None}},
        {"application_id": "a3", "decided_at": "2026-11-03T10:00:00.000000Z",
         "recorded": {"outcome": "approved", "credit_limit": 50_000.0, "annual_rate": 0.072,
                      "grade": "A", "reason_codes": ["CR02F"]},
         "candidate": {"outcome": "approved", "credit_limit": 40_000.0, "annual_rate": 0.072,
                       "grade": "A", "reason_codes": ["CR02F"], "note": None}}]


def test_the_score_psi_is_counted_in_bins_of_the_recorded_score():
    frame, replayed = frames()
    shift = summarise(frame, replayed, lgd=0.5)["score_shift"]
    # Seven distinct recorded scores, one bin each (1/7). The candidate's scores fill them
    # alike but for 590's bin (585, 600], left empty, and 650's, which 640 joins.
    floor = 1e-4
    expected = (1 / 7) * math.log(2) + (floor - 1 / 7) * math.log(floor * 7)
    assert shift["psi"] == pytest.approx(expected, rel=1e-12)
    assert shift["level"] == "act"
    assert [b["label"] for b in shift["bins"]] == ["500", "550", "580", "590", "610", "620",
                                                   "650"]
    assert [b["candidate"] for b in shift["bins"]] == pytest.approx(
        [1 / 7, 1 / 7, 1 / 7, 0.0, 1 / 7, 1 / 7, 2 / 7])
    assert all(b["recorded"] == pytest.approx(1 / 7) for b in shift["bins"])


def test_a_candidate_that_decides_alike_changes_nothing():
    same = [(aid, rec, d, rec) for aid, rec, d, _ in DECISIONS]
    frame, replayed = frames(same)
    s = summarise(frame, replayed, lgd=0.45)
    assert s["changes"] == {"count": 0, "decisions": []}
    assert s["score_shift"]["psi"] == 0.0 and s["approval"]["change_pp"] == 0.0
    assert s["expected_loss"]["change"] == 0.0
    assert all(n == 0 for r, row in s["swap"]["matrix"].items() for c, n in row.items()
               if r != c)


def test_a_candidate_without_a_model_for_the_missing_sources_is_counted_and_noted():
    frame, replayed = frames()
    replayed.loc[replayed.index[0], ["c_outcome", "c_grade", "c_note"]] = (
        "deferred", None, "no model of v2 decides without income_tax: deferred unscored")
    replayed.loc[replayed.index[0], ["c_score", "c_pd", "c_credit_limit"]] = (NAN, NAN, 0.0)
    s = summarise(frame, replayed, lgd=0.5)
    assert s["unscored"] == 1
    first = s["changes"]["decisions"][0]
    assert first["application_id"] == "a1" and first["candidate"]["grade"] is None
    assert first["candidate"]["note"].startswith("no model of v2")
    # The unscored row falls into the missing bin.
    assert s["score_shift"]["bins"][-1]["label"] == "missing"
    assert s["score_shift"]["bins"][-1]["candidate"] == pytest.approx(1 / 7)


def test_an_empty_window_has_nothing_to_measure():
    frame, replayed = frames()
    s = summarise(frame.iloc[:0], replayed.iloc[:0], lgd=0.5)
    json.dumps(s, allow_nan=False)
    assert s["rows"] == 0 and s["approval"]["recorded"] is None
    assert s["approval"]["change_pp"] is None and s["score_shift"]["psi"] is None
    assert s["means"]["pd"]["recorded"] is None and s["expected_loss"]["recorded"] == 0.0


@pytest.mark.parametrize(("lgd", "limit", "message"), [
    (1.5, 10, "lgd must be between 0 and 1"), (0.4, -1, "changed_limit must be at least 0")])
def test_bad_parameters_are_refused(lgd, limit, message):
    frame, replayed = frames()
    with pytest.raises(ValueError, match=message):
        summarise(frame, replayed, lgd=lgd, changed_limit=limit)


def test_the_replayed_rows_must_be_the_frames():
    frame, replayed = frames()
    with pytest.raises(ValueError, match="index of frame"):
        summarise(frame, replayed.iloc[::-1], lgd=0.5)


def test_a_sample_against_itself_has_no_shift():
    values = np.random.default_rng(3).normal(600, 40, 5_000).round()
    shift = sample_shift(values, values)
    assert shift.psi == 0.0 and shift.expected == shift.observed
    moved = sample_shift(values, values + 25)
    assert moved.psi is not None and moved.psi > 0.25
