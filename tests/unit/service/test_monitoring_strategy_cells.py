"""The strategy cells of a decision, from hand-built records, and the strategies panel read
from them: each strategy's outcomes, PD and line, and each shadow's swap set."""

from __future__ import annotations

from typing import Any

import pytest

from service.usecases.monitoring.cells import NAME_IN_KEY, decision_cells, merge, strategy_key
from service.usecases.monitoring.strategies import strategies_of

CHAMPION, STRICT, WIDE, LOOSE = "v1/2026.11", "v1/2026.11-strict", "v1/2026.11-wide", "v2/x"


def shadow(name: str, outcome: str | None, *, pd: float | None = None,
           line: float | None = None) -> dict[str, Any]:
    """A shadow's entry as the record holds it; outcome None is a shadow that failed."""
    if outcome is None:
        return {"strategy": name, "model_version": "v1", "policy_version": "p",
                "outcome": None, "error": "RuntimeError"}
    return {"strategy": name, "model_version": "v1", "policy_version": "p",
            "outcome": outcome, "scored": pd is not None, "credit_limit": line,
            "annual_rate": 0.1 if line else None, "grade": "B" if line else None,
            "score": 700 if pd is not None else None, "pd": pd, "reason_codes": [],
            "reasons": []}


def record(outcome: str, *, strategy: str | None = CHAMPION, role: str = "champion",
           pd: float | None = 0.03, line: float = 0.0,
           shadows: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """A decision record's payload: scored unless ``pd`` is None."""
    payload: dict[str, Any] = {"outcome": outcome, "sources": {}, "decided_ms": 10.0}
    if pd is not None:
        payload.update({"model_version": "v1", "policy_version": "2026.11",
                        "decision": {"credit_limit": line, "grade": "B", "score": 700,
                                     "pd": pd},
                        "reason_codes": ["K01"] if outcome == "declined" else [],
                        "features": {}})
    if strategy is not None:
        payload["strategy"] = {"name": strategy, "role": role, "model_version": "v1",
                               "policy_version": strategy.split("/")[1]}
        payload["shadows"] = list(shadows or [])
    return payload


def cells_of(payload: dict[str, Any]) -> dict:
    return decision_cells(payload, groups=None, durations_ms={}, opened_breakers=(),
                          references={})


def strategy_cells(payload: dict[str, Any]) -> dict:
    return {cell: value for cell, value in cells_of(payload).items()
            if cell[0] in ("strategy", "strategy_pd", "swap")}


def test_a_challengers_approval_with_shadows_counts_each_strategy_and_swap():
    payload = record("approved", strategy=STRICT, role="challenger", pd=0.02, line=30000.0,
                     shadows=[shadow(WIDE, "approved", pd=0.02, line=40000.0),
                              shadow(LOOSE, "declined", pd=0.05),
                              shadow("v1/broken", None)])
    assert strategy_cells(payload) == {
        ("strategy", f"{STRICT}|challenger|approved"): [1, 30000.0],
        ("strategy_pd", f"{STRICT}|challenger"): [1, 0.02],
        ("strategy", f"{WIDE}|shadow|approved"): [1, 40000.0],
        ("strategy_pd", f"{WIDE}|shadow"): [1, 0.02],
        ("swap", f"{WIDE}|{STRICT}|approved>approved"): [1, 0.0],
        ("strategy", f"{LOOSE}|shadow|declined"): [1, 0.0],
        ("strategy_pd", f"{LOOSE}|shadow"): [1, 0.05],
        ("swap", f"{LOOSE}|{STRICT}|approved>declined"): [1, 0.0],
        # A shadow that failed has no outcome and no PD, and is counted as such.
        ("strategy", "v1/broken|shadow|failed"): [1, 0.0],
        ("swap", f"v1/broken|{STRICT}|approved>failed"): [1, 0.0]}


def test_a_champions_unscored_deferral_counts_no_pd_and_no_line():
    payload = record("deferred", pd=None, shadows=[shadow(WIDE, "deferred")])
    assert strategy_cells(payload) == {
        ("strategy", f"{CHAMPION}|champion|deferred"): [1, 0.0],
        ("strategy", f"{WIDE}|shadow|deferred"): [1, 0.0],
        ("swap", f"{WIDE}|{CHAMPION}|deferred>deferred"): [1, 0.0]}


def test_a_champion_alone_adds_two_cells_and_a_record_before_strategies_none():
    alone = record("declined", pd=0.2)
    assert strategy_cells(alone) == {
        ("strategy", f"{CHAMPION}|champion|declined"): [1, 0.0],
        ("strategy_pd", f"{CHAMPION}|champion"): [1, 0.2]}
    before = record("approved", strategy=None, pd=0.01, line=20000.0)
    assert strategy_cells(before) == {}
    # The rest of its cells are as before.
    assert cells_of(before)[("outcome", "approved")] == [1, 20000.0]


def test_a_long_name_or_one_holding_the_separator_keeps_keys_short_and_readable():
    long_a, long_b = "m" * 100 + "/a", "m" * 100 + "/b"
    assert strategy_key(long_a) != strategy_key(long_b)
    assert len(strategy_key(long_a)) == NAME_IN_KEY
    assert strategy_key(CHAMPION) == CHAMPION
    payload = record("approved", strategy=long_a, line=5000.0,
                     shadows=[shadow(long_b, "declined", pd=0.1), shadow("v1/a|b", "approved",
                                                                           pd=0.01, line=1.0)])
    keys = [key for _, key in strategy_cells(payload)]
    assert max(map(len, keys)) <= 160
    panel = strategies_of({cell: (int(n), total) for cell, (n, total) in
                           cells_of(payload).items()})
    assert {(r["name"], r["role"]) for r in panel["strategies"]} == {
        (strategy_key(long_a), "champion"), (strategy_key(long_b), "shadow"),
        ("v1/a\N{BROKEN BAR}b", "shadow")}
    assert {w["shadow"]: w["swap_out"] for w in panel["swaps"]} == {
        strategy_key(long_b): 1, "v1/a\N{BROKEN BAR}b": 0}


def panel_of(payloads: list[dict[str, Any]]) -> dict[str, Any]:
    summed: dict = {}
    for payload in payloads:
        merge(summed, cells_of(payload))
    return strategies_of({cell: (int(n), total) for cell, (n, total) in summed.items()})


def test_the_panel_sets_strategies_side_by_side_with_each_shadows_swap_set():
    payloads = [
        # The champion: two approvals, a decline and a deferral.
        record("approved", pd=0.01, line=20000.0, shadows=[shadow(WIDE, "approved", pd=0.01,
                                                                   line=30000.0)]),
        record("approved", pd=0.03, line=10000.0, shadows=[shadow(WIDE, "declined", pd=0.03)]),
        record("declined", pd=0.2, shadows=[shadow(WIDE, "approved", pd=0.2, line=3000.0)]),
        record("deferred", pd=None, shadows=[shadow(WIDE, None)]),
        # The challenger: one decline.
        record("declined", strategy=STRICT, role="challenger", pd=0.04,
               shadows=[shadow(WIDE, "approved", pd=0.04, line=8000.0)]),
        # Before strategies: in the volume, not in this panel.
        record("approved", strategy=None, pd=0.01, line=9000.0)]
    panel = panel_of(payloads)
    rows = {(r["name"], r["role"]): r for r in panel["strategies"]}
    assert [(r["name"], r["role"]) for r in panel["strategies"]] == [
        (CHAMPION, "champion"), (STRICT, "challenger"), (WIDE, "shadow")]
    champion = rows[(CHAMPION, "champion")]
    assert (champion["decisions"], champion["approved"], champion["declined"],
            champion["deferred"], champion["scored"]) == (4, 2, 1, 1, 3)
    assert champion["share"] == pytest.approx(4 / 5)
    assert champion["approval_rate"] == pytest.approx(2 / 4)
    assert champion["mean_pd"] == pytest.approx((0.01 + 0.03 + 0.2) / 3)
    assert champion["mean_line"] == pytest.approx(15000.0)
    challenger = rows[(STRICT, "challenger")]
    assert (challenger["share"], challenger["approval_rate"], challenger["mean_line"]) == (
        pytest.approx(1 / 5), 0.0, None)
    wide = rows[(WIDE, "shadow")]
    assert (wide["decisions"], wide["approved"], wide["declined"], wide["failed"],
            wide["share"]) == (5, 3, 1, 1, None)
    # A shadow that failed has no outcome: the rate is of the four that have one.
    assert wide["approval_rate"] == pytest.approx(3 / 4)
    assert wide["mean_line"] == pytest.approx((30000.0 + 3000.0 + 8000.0) / 3)
    assert wide["mean_pd"] == pytest.approx((0.01 + 0.03 + 0.2 + 0.04) / 4)
    assert panel["others_running"] and panel["decisions"] == 5
    assert panel["unattributed"] == 1

    (swaps,) = panel["swaps"]
    assert (swaps["shadow"], swaps["compared"], swaps["swap_in"], swaps["swap_out"],
            swaps["same"]) == (WIDE, 5, 2, 1, 1)
    assert swaps["matrix"] == {
        "rows": ["approved", "declined", "deferred"],
        "columns": ["approved", "declined", "deferred", "failed"],
        "counts": [[1, 1, 0, 0], [2, 0, 0, 0], [0, 0, 0, 1]]}
    assert swaps["by_strategy"] == [
        {"strategy": CHAMPION, "compared": 4, "swap_in": 1, "swap_out": 1, "same": 1},
        {"strategy": STRICT, "compared": 1, "swap_in": 1, "swap_out": 0, "same": 0}]


def test_the_champion_alone_is_shown_alone_and_no_failures_no_failed_column():
    panel = panel_of([record("approved", pd=0.01, line=20000.0), record("declined", pd=0.3)])
    assert [(r["name"], r["role"], r["share"]) for r in panel["strategies"]] == [
        (CHAMPION, "champion", 1.0)]
    assert not panel["others_running"] and panel["swaps"] == []
    assert panel["unattributed"] == 0
    shadowed = panel_of([record("approved", pd=0.01, line=1.0,
                                shadows=[shadow(WIDE, "approved", pd=0.01, line=1.0)])])
    assert shadowed["swaps"][0]["matrix"]["columns"] == ["approved", "declined", "deferred"]
    assert strategies_of({}) == {"strategies": [], "others_running": False, "decisions": 0,
                                 "unattributed": 0, "swaps": []}
