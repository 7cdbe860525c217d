"""Backtests on a real decision log (SQLite and PostgreSQL): decisions made through the API,
read back from the audit log, and decided again by the recorded strategy and by others."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest

from audit import AuditQuery, AuditStore
from audit.canonical import parse_time
from scoring.batch.backtest import RECORDED, replay_frame, summarise
from scoring.online.engine import DecisionEngine
from scoring.online.policy import POLICY_DIR, load_policy
from service.usecases.backtests.loader import logged_decisions
from tests.integration.service.conftest import Client

REQUEST = {"amount": 20000, "term_months": 12, "purpose": "travel"}
FULL, NO_TAX, NO_COURT = 20, 10, 2


def applicant(national_id: str) -> dict:
    return {"applicant": {"national_id": national_id, "name": "张三", "mobile": "13812348000"}}


@dataclass
class Log:
    """Decisions made through the API, and what each application's standing one was."""

    client: Client                                              # every source answering
    standing: dict[str, dict] = field(default_factory=dict)    # application id → answer
    unknown: dict[str, str] = field(default_factory=dict)      # application id → sources
    national_id: dict[str, str] = field(default_factory=dict)  # application id → applicant
    retried_scored: int = 0      # retries of deferrals that had been scored
    defaulted: dict[str, float] = field(default_factory=dict)  # posted loans' outcomes

    @property
    def store(self) -> AuditStore:
        return self.client.app.extensions["flashloan"].store

    @property
    def engine(self) -> DecisionEngine:
        return self.client.app.extensions["flashloan"].engine

    def load(self, **window) -> pd.DataFrame:
        window = {"since": None, "until": None, **window}
        return logged_decisions(self.store, self.engine.model.spec, **window)

    def keep(self, answer: dict, national_id: str, unknown: str = "") -> None:
        aid = answer["application_id"]
        self.standing[aid], self.unknown[aid], self.national_id[aid] = answer, unknown, national_id


@pytest.fixture
def log(make_client, database_url, people) -> Log:
    """Twenty applicants decided with every source; ten with the income tax bureau down
    (scored by the model trained without it; its deferrals decided again once it is back);
    two with the court records down (deferred unscored; one decided again). Three approved
    loans have outcomes: one defaulted, one current, one never drawn."""
    full = make_client(database_url)
    no_tax = make_client(database_url, stub_faults="income_tax=malformed")
    no_court = make_client(database_url, stub_faults="court_records=malformed")
    log = Log(full)
    for nid in people[:FULL]:
        log.keep(full.apply(nid, **REQUEST).get_json(), nid)
    for nid in people[FULL:FULL + NO_TAX]:
        answer = no_tax.apply(nid, **REQUEST).get_json()
        if answer["status"] != "deferred":
            log.keep(answer, nid, "income_tax")
            continue
        log.retried_scored += 1
        again = full.post(f"/v1/applications/{answer['application_id']}/retry", applicant(nid))
        assert again.status_code == 200, again.get_json()
        log.keep(again.get_json(), nid)
    assert log.retried_scored and NO_TAX - log.retried_scored, "both kinds must be in the log"
    for index, nid in enumerate(people[FULL + NO_TAX:FULL + NO_TAX + NO_COURT]):
        answer = no_court.apply(nid, **REQUEST).get_json()
        assert answer["status"] == "deferred" and answer["missing_sources"] == ["court_records"]
        if index == 0:
            again = full.post(f"/v1/applications/{answer['application_id']}/retry",
                              applicant(nid))
            assert again.status_code == 200, again.get_json()
            log.keep(again.get_json(), nid)
    approved = [a for aid, a in log.standing.items()
                if a["status"] == "approved" and log.unknown[aid] == ""]
    now = datetime.now(UTC)
    month = now.strftime("%Y-%m")
    for answer, (drawn, status, days, defaulted) in zip(
            approved, ((True, "default", 0, 1.0), (True, "current", 0, 0.0),
                       (False, None, 0, math.nan)), strict=False):
        aid = answer["application_id"]
        body = {"application_id": aid, "drawn": drawn}
        if drawn:
            body.update(drawn_at=now.isoformat(), amount=answer["decision"]["credit_limit"] / 2,
                        performance=[{"month": month, "status": status, "days_past_due": days}])
        assert full.post("/v1/outcomes", body, who="servicing").status_code == 200
        log.defaulted[aid] = defaulted
    assert len(log.defaulted) == 3
    return log


def test_the_log_gives_the_latest_scored_decision_of_each_application(log):
    frame = log.load(chunk=7)
    assert set(frame["application_id"]) == set(log.standing)
    assert len(frame) == FULL + NO_TAX + 1
    # One deferral before scoring decided again, one never; each scored deferral decided again.
    assert frame.attrs["skipped"] == {"purged": 0, "unscored": NO_COURT, "incomplete": 0,
                                      "superseded": log.retried_scored}
    assert frame["seq"].is_monotonic_increasing and frame["decided_at"].is_monotonic_increasing
    for row in frame.itertuples(index=False):
        answer, decision = log.standing[row.application_id], log.standing[
            row.application_id]["decision"]
        assert row.outcome == answer["status"]
        assert row.unknown_sources == log.unknown[row.application_id]
        assert (row.strategy, row.purpose, row.term_months, row.amount) == (
            "v1/2026.11", "travel", 12.0, 20000.0)
        if decision is not None:
            assert (row.score, row.pd, row.grade, row.credit_limit) == (
                decision["score"], decision["pd"], decision["grade"], decision["credit_limit"])
            assert row.reason_codes == ";".join(r["code"] for r in decision["reasons"])
            rate = decision["annual_rate"]
            assert (math.isnan(row.annual_rate) if rate is None else row.annual_rate == rate)
    # Features unknown because a source did not answer are NaN; the policy's facts are all there.
    no_tax = frame[frame["unknown_sources"] == "income_tax"]
    assert not no_tax.empty and no_tax["tax_monthly_salary"].isna().all()
    assert frame.loc[frame["unknown_sources"] == "", "tax_monthly_salary"].notna().any()
    defaulted = dict(zip(frame["application_id"], frame["defaulted"], strict=True))
    assert {aid: defaulted[aid] for aid in log.defaulted} == pytest.approx(
        log.defaulted, nan_ok=True)
    assert all(math.isnan(v) for aid, v in defaulted.items() if aid not in log.defaulted)
    # Read in one chunk or many, the frame is the same.
    pd.testing.assert_frame_equal(frame, log.load())


def test_a_window_reads_the_decisions_recorded_in_it(log):
    frame = log.load()
    since, until = (parse_time(frame["decided_at"][i]) for i in (4, 12))
    window = log.load(since=since, until=until)
    assert window["application_id"].tolist() == frame["application_id"][4:12].tolist()
    assert window.drop(columns="defaulted").equals(
        frame.iloc[4:12].reset_index(drop=True).drop(columns="defaulted"))
    assert log.load(since=until, until=since).empty


def test_records_purged_lacking_a_fact_or_naming_their_strategy(log):
    store = log.store
    frame = log.load()
    first = next(store.iter_records(AuditQuery(kinds=("decision.made",),
                                               application_id=frame["application_id"][0])))
    payload = json.loads(json.dumps(first.payload))
    named = {**payload, "application_id": "a_named",
             "strategy": {"name": "v1/2026.11", "role": "challenger", "model_version": "v1",
                          "policy_version": "2026.11"}, "shadows": []}
    named["strategy"]["name"] = "v1/2026.11@challenger"
    store.append("decision.made", named, application_id="a_named")
    lacking = {**payload, "application_id": "a_lacking",
               "facts": {k: v for k, v in payload["facts"].items() if k != "age"}}
    store.append("decision.made", lacking, application_id="a_lacking")
    # A record made before decisions named their strategy: its model and policy name it.
    unnamed = {k: v for k, v in payload.items() if k not in ("strategy", "shadows")}
    unnamed.update(application_id="a_unnamed", policy_version="2026.10")
    store.append("decision.made", unnamed, application_id="a_unnamed")
    store.purge(parse_time(frame["decided_at"][3]), "system:test", retention_years=0)
    again = log.load()
    assert again.attrs["skipped"]["purged"] == 3 and again.attrs["skipped"]["incomplete"] == 1
    assert again["application_id"].tolist() == [*frame["application_id"][3:], "a_named",
                                                 "a_unnamed"]
    named_row = again.iloc[-2]
    assert named_row["strategy"] == "v1/2026.11@challenger"
    assert again.iloc[-1]["strategy"] == "v1/2026.10"
    with pytest.raises(ValueError, match="chunk must be a positive integer; got 0"):
        log.load(chunk=0)
    names = log.engine.spec_names
    np.testing.assert_array_equal(named_row[names].to_numpy(dtype=float),
                                  frame.iloc[0][names].to_numpy(dtype=float))


def test_the_recorded_strategy_against_itself_changes_nothing(log):
    frame = log.load()
    assert set(frame["unknown_sources"]) == {"", "income_tax"}
    replayed = replay_frame(frame, log.engine)
    assert replayed.index.equals(frame.index)
    for name in RECORDED:
        recorded = frame[name].to_numpy(dtype=object)
        again = replayed[f"c_{name}"].to_numpy(dtype=object)
        same = [(a == b) or (isinstance(a, float) and isinstance(b, float)
                             and math.isnan(a) and math.isnan(b))
                for a, b in zip(recorded, again, strict=True)]
        assert all(same), name
    assert (replayed["c_note"] == "").all()
    summary = summarise(frame, replayed, lgd=0.45)
    assert summary["changes"] == {"count": 0, "decisions": []}
    matrix = summary["swap"]["matrix"]
    assert all(matrix[r][c] == 0 for r in matrix for c in matrix[r] if r != c)
    assert sum(matrix[r][r] for r in matrix) == len(frame)
    assert summary["approval"]["change_pp"] == 0.0
    assert summary["score_shift"]["psi"] == 0.0
    assert summary["expected_loss"]["recorded"] == summary["expected_loss"]["candidate"] > 0
    assert summary["realised_default"]["recorded_approvals"] == {
        "decisions": int((frame["outcome"] == "approved").sum()), "with_outcome": 2,
        "defaults": 1, "rate": 0.5}


def test_replay_is_the_same_in_any_order_and_any_partition(log):
    frame = log.load()
    whole = replay_frame(frame, log.engine)
    shuffled = frame.sample(frac=1.0, random_state=7)
    shuffled.index = shuffled.index * 10 + 3
    again = replay_frame(shuffled, log.engine)
    assert again.index.equals(shuffled.index)
    again.index = (again.index - 3) // 10
    pd.testing.assert_frame_equal(again.loc[frame.index], whole)
    parts = [replay_frame(frame.iloc[start:start + 8], log.engine)
             for start in range(0, len(frame), 8)]
    pd.testing.assert_frame_equal(pd.concat(parts), whole)
    empty = replay_frame(frame.iloc[:0], log.engine)
    assert empty.empty and list(empty.columns) == list(whole.columns)
    with pytest.raises(ValueError, match="got no age, unknown_sources"):
        replay_frame(frame.drop(columns=["age", "unknown_sources"]), log.engine)


def test_a_candidate_without_fallbacks_defers_what_it_cannot_score(log):
    frame = log.load()
    engine = log.engine
    bare = replay_frame(frame, DecisionEngine(engine.model, engine.policy))
    full = replay_frame(frame, engine)
    lost = (frame["unknown_sources"] == "income_tax").to_numpy()
    assert lost.any() and (~lost).any()
    assert (bare.loc[lost, "c_outcome"] == "deferred").all()
    assert bare.loc[lost, ["c_score", "c_pd", "c_annual_rate", "c_grade"]].isna().all().all()
    assert bare.loc[lost, "c_note"].str.contains("decides without income_tax").all()
    pd.testing.assert_frame_equal(bare.loc[~lost], full.loc[~lost])
    assert summarise(frame, bare, lgd=0.45)["unscored"] == int(lost.sum())


def test_a_stricter_policy_changes_exactly_the_decisions_it_turns_down(log, make_client,
                                                                      tmp_path):
    doc = json.loads((POLICY_DIR / "2026.11.json").read_text(encoding="utf-8"))
    doc.update(version="2026.11-strict", pd_cutoff=0.035)
    path = tmp_path / "strict.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    engine = log.engine
    frame = log.load()
    replayed = replay_frame(frame, DecisionEngine(engine.model, load_policy(str(path)),
                                                  engine.fallbacks))
    summary = summarise(frame, replayed, lgd=0.45)
    # The same applicants decided directly by a service with the stricter policy, their sources
    # answering as they did for the standing decision.
    url = f"sqlite:///{tmp_path / 'strict.db'}"
    strict = {"": make_client(url, policy=str(path)),
              "income_tax": make_client(url, policy=str(path),
                                        stub_faults="income_tax=malformed")}
    direct = {aid: strict[log.unknown[aid]].apply(nid, **REQUEST).get_json()
              for aid, nid in log.national_id.items()}
    turned_down = {aid for aid, answer in direct.items()
                   if log.standing[aid]["status"] == "approved" and answer["status"] != "approved"}
    assert turned_down, "the stricter policy must turn some approvals down"
    changed = {d["application_id"] for d in summary["changes"]["decisions"]}
    assert changed == turned_down and summary["changes"]["count"] == len(turned_down)
    assert all(d["recorded"]["outcome"] == "approved" for d in summary["changes"]["decisions"])
    for row in pd.concat([frame, replayed], axis=1).itertuples(index=False):
        answer = direct[row.application_id]
        assert row.c_outcome == answer["status"]
        if answer["decision"] is not None:
            decision = answer["decision"]
            assert (row.c_score, row.c_grade, row.c_credit_limit, row.c_pd) == (
                decision["score"], decision["grade"], decision["credit_limit"], decision["pd"])
    assert summary["swap"]["swap_in"] == 0
    assert summary["swap"]["swap_out"] == sum(direct[aid]["status"] == "declined"
                                              for aid in turned_down)
    assert summary["approval"]["change_pp"] == pytest.approx(
        -100 * len(turned_down) / len(frame))
    assert summary["expected_loss"]["candidate"] < summary["expected_loss"]["recorded"]


def test_the_dask_path_decides_the_log_as_pandas_does_to_the_last_bit(log, tmp_path):
    """On a real local cluster of two workers, in several partitions: every candidate
    column, the fallback-decided rows among them, is the pandas path's exactly."""
    from scoring.governance.strategy import Strategy
    from service.usecases.backtests.run import Backtest, replayed_by
    from service.usecases.engines import Engines

    frame = log.load()
    assert set(frame["unknown_sources"]) == {"", "income_tax"}
    folder = tmp_path / "policies"
    folder.mkdir()
    doc = json.loads((POLICY_DIR / "2026.11.json").read_text(encoding="utf-8"))
    (folder / "2026.11-strict.json").write_text(
        json.dumps({**doc, "version": "2026.11-strict", "pd_cutoff": 0.035}), encoding="utf-8")
    engines = Engines(policy_search=(folder,))
    for candidate in (Strategy("v1", "2026.11"), Strategy("v1", "2026.11-strict")):
        backtest = Backtest(candidate)
        on_pandas = replayed_by(engines, backtest, frame)
        on_dask = replayed_by(engines, backtest, frame, dask="local", npartitions=3)
        pd.testing.assert_frame_equal(on_dask, on_pandas, check_exact=True)
