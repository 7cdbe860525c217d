"""The strategies panel over HTTP decisions (SQLite and PostgreSQL): with a champion, a
challenger and a shadow in force, every figure of the panel is what the decision records say
each strategy decided, and each shadow's swap set is what its recorded outcomes make."""

from __future__ import annotations

import json
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import pytest

from audit import AuditQuery
from scoring.governance.strategy import Strategy, StrategyPlan
from scoring.online.policy import POLICY_DIR
from service.usecases.promotion import promote
from tests.integration.service.conftest import Client

CHAMPION, STRICT, MID = "v1/2026.11", "v1/2026.11-strict", "v1/2026.11-mid"
OUTCOMES = ("approved", "declined", "deferred")
REFRESH_S = 0.01


def write_policy(folder: Path, version: str, pd_cutoff: float) -> None:
    """The shipped policy under another version, with another PD cut-off."""
    doc = json.loads((POLICY_DIR / "2026.11.json").read_text(encoding="utf-8"))
    doc.update(version=version, pd_cutoff=pd_cutoff)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{version}.json").write_text(json.dumps(doc), encoding="utf-8")


def policies(folder: Path) -> Path:
    """A stricter challenger's policy and a shadow's between it and the champion's."""
    write_policy(folder, "2026.11-strict", 0.035)
    write_policy(folder, "2026.11-mid", 0.05)
    return folder


def set_plan(wired: Any, share: float = 0.5) -> None:
    """Put the stricter challenger on ``share`` of the applicants and the middle one aside."""
    promote(wired.strategies,
            StrategyPlan(Strategy.parse(CHAMPION), Strategy.parse(STRICT), share,
                         (Strategy.parse(MID),)),
            actor="risk-officer", reason="compare the cut-offs side by side",
            spec=wired.engine.model.spec, min_auc=0.7)
    time.sleep(REFRESH_S * 3)


def expected_panel(payloads: list[dict[str, Any]]) -> dict[str, Any]:
    """The panel's figures counted straight from the decision records."""
    rows: dict[tuple[str, str], dict[str, Any]] = defaultdict(
        lambda: {"outcomes": Counter(), "pds": [], "lines": []})
    swaps: dict[str, Counter] = defaultdict(Counter)
    by_decider: dict[str, dict[str, Counter]] = defaultdict(lambda: defaultdict(Counter))
    for p in payloads:
        name, role, outcome = p["strategy"]["name"], p["strategy"]["role"], p["outcome"]
        row = rows[(name, role)]
        row["outcomes"][outcome] += 1
        if "model_version" in p and p.get("decision"):
            row["pds"].append(p["decision"]["pd"])
            if outcome == "approved":
                row["lines"].append(p["decision"]["credit_limit"])
        for s in p["shadows"]:
            would = s["outcome"] or "failed"
            shadow = rows[(s["strategy"], "shadow")]
            shadow["outcomes"][would] += 1
            if s.get("scored"):
                shadow["pds"].append(s["pd"])
            if would == "approved":
                shadow["lines"].append(s["credit_limit"])
            swaps[s["strategy"]][(outcome, would)] += 1
            by_decider[s["strategy"]][name][(outcome, would)] += 1
    deciding = sum(sum(r["outcomes"].values()) for (_, role), r in rows.items()
                   if role != "shadow")
    figures = {}
    for (name, role), r in rows.items():
        decisions = sum(r["outcomes"].values())
        with_outcome = decisions - r["outcomes"]["failed"]
        figures[(name, role)] = {
            "decisions": decisions, **{o: r["outcomes"][o] for o in OUTCOMES},
            "failed": r["outcomes"]["failed"],
            "share": None if role == "shadow" else pytest.approx(decisions / deciding),
            "approval_rate": pytest.approx(r["outcomes"]["approved"] / with_outcome),
            "mean_pd": pytest.approx(sum(r["pds"]) / len(r["pds"])) if r["pds"] else None,
            "mean_line": (pytest.approx(sum(r["lines"]) / len(r["lines"])) if r["lines"]
                          else None)}
    return {"rows": figures, "swaps": swaps, "by_decider": by_decider}


def shown(row: dict[str, Any]) -> dict[str, Any]:
    return {k: row[k] for k in ("decisions", *OUTCOMES, "failed", "share", "approval_rate",
                                "mean_pd", "mean_line")}


def test_the_strategies_panel_counts_what_each_strategy_decided(make_client, database_url,
                                                                 people, tmp_path):
    client: Client = make_client(database_url, policies_dir=str(policies(tmp_path / "p")),
                                 strategy_refresh_s=REFRESH_S)
    wired = client.app.extensions["flashloan"]
    # The champion alone first: these decisions have no shadow.
    for nid in people[:4]:
        assert client.apply(nid).status_code == 201
    set_plan(wired)
    for nid in people[4:40]:
        assert client.apply(nid).status_code == 201
    payloads = [r.payload for r in wired.store.iter_records(
        AuditQuery(kinds=("decision.made",)))]
    assert len(payloads) == 40
    expected = expected_panel(payloads)
    assert set(expected["rows"]) == {(CHAMPION, "champion"), (STRICT, "challenger"),
                                     (MID, "shadow")}

    m = wired.monitoring
    view = m.dashboard(m.window("day"), with_fairness=False)
    panel = view["strategies"]
    assert {(r["name"], r["role"]): shown(r) for r in panel["strategies"]} == expected["rows"]
    assert [r["role"] for r in panel["strategies"]] == ["champion", "challenger", "shadow"]
    assert panel["decisions"] == view["volume"]["applications"] == 40
    assert panel["unattributed"] == 0 and panel["others_running"]
    # The shadow decided the 36 applications made under the plan, aside.
    (mid,) = [r for r in panel["strategies"] if r["role"] == "shadow"]
    assert mid["decisions"] == 36 and mid["approved"] and mid["declined"]

    (swap_set,) = panel["swaps"]
    pairs = expected["swaps"][MID]
    assert swap_set["shadow"] == MID and swap_set["compared"] == 36
    assert (swap_set["swap_in"], swap_set["swap_out"]) == (
        pairs[("declined", "approved")], pairs[("approved", "declined")])
    matrix = swap_set["matrix"]
    assert matrix["counts"] == [[pairs[(d, w)] for w in matrix["columns"]]
                                for d in matrix["rows"]]
    assert {b["strategy"]: (b["compared"], b["swap_in"], b["swap_out"])
            for b in swap_set["by_strategy"]} == {
        decider: (sum(c.values()), c[("declined", "approved")], c[("approved", "declined")])
        for decider, c in expected["by_decider"][MID].items()}
    # The shadow's cut-off lies between the challenger's and the champion's, all else alike:
    # it declines nothing the challenger approved, and approves nothing the champion declined.
    by_decider = {b["strategy"]: b for b in swap_set["by_strategy"]}
    assert by_decider[STRICT]["swap_out"] == 0 and by_decider[CHAMPION]["swap_in"] == 0
    assert swap_set["swap_in"] + swap_set["swap_out"] >= 1, "these applicants make a swap"
