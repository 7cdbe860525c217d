"""One meaning per code: GET /v1/reasons, docs/reasons.md and the decisions themselves agree."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from scoring.governance.catalogue import reason_catalogue
from scoring.online.policy import load_policy
from scoring.online.spec import load_spec, parse_spec
from service.cli.commands.reasons import catalogue_markdown
from service.cli.main import main

DOC = Path(__file__).resolve().parents[3] / "docs" / "reasons.md"


@pytest.fixture
def served(client) -> dict:
    r = client.get("/v1/reasons")
    assert r.status_code == 200, r.get_json()
    return r.get_json()


def test_the_endpoint_lists_every_code_of_the_spec_and_the_policy_once(served):
    assert served["items"] == reason_catalogue(load_spec(), load_policy())
    codes = [e["code"] for e in served["items"]]
    assert len(codes) == len(set(codes))
    spec, policy = load_spec(), load_policy()
    by_code = {e["code"]: e for e in served["items"]}
    for f in spec.features:
        assert by_code[f.adverse.code]["kind"] == "adverse"
        assert by_code[f.adverse.code]["actionable"] is f.actionable
        if f.favourable is not None:
            # A feature's two texts never share a code.
            assert f.favourable.code != f.adverse.code
            assert by_code[f.favourable.code]["kind"] == "favourable"
    assert {r.code for r in policy.rules.values()} <= set(by_code)
    assert {"H01", "H02", "L01", "L02", "L03"} <= set(by_code)
    # A listing or bad debt cannot be changed at request time; an overdue payment can.
    assert (by_code["K01"]["actionable"], by_code["K03"]["actionable"],
            by_code["K02"]["actionable"]) == (False, False, True)


def test_a_code_given_to_both_texts_of_a_feature_is_refused():
    import json

    from scoring.online.spec import SPEC_PATH

    doc = json.loads(SPEC_PATH.read_text(encoding="utf-8"))
    feature = next(f for f in doc["features"] if f["favourable"] is not None)
    feature["favourable"]["code"] = feature["adverse"]["code"]
    with pytest.raises(ValueError, match="reason codes must be unique"):
        parse_spec(doc)


@pytest.mark.parametrize("role", ["channel", "risk_officer", "auditor", "admin"])
def test_every_role_reads_the_codes_and_nobody_without_a_key(client, role):
    assert client.get("/v1/reasons", who=role).status_code == 200
    assert client.get("/v1/reasons", who=None).status_code == 401


def test_the_document_is_the_catalogue(served):
    assert DOC.read_text(encoding="utf-8") == catalogue_markdown(served), (
        "docs/reasons.md is out of step: run `flashloan reasons --out docs/reasons.md`")
    printed = CliRunner().invoke(main, ["reasons"])
    assert printed.exit_code == 0, printed.output
    assert printed.output == DOC.read_text(encoding="utf-8")


def test_every_code_a_decision_gives_means_what_the_catalogue_says(client, people, served):
    by_code = {e["code"]: e for e in served["items"]}
    seen = set()
    for nid in people:
        answer = client.apply(nid, amount=60_000).get_json()
        decision = answer["decision"]
        if decision is None:
            continue
        expected = {"approved": ("favourable",), "declined": ("adverse", "rule")}[
            answer["status"]]
        for reason in decision["reasons"]:
            entry = by_code[reason["code"]]
            assert entry["kind"] in expected, (answer["status"], reason)
            assert (entry["text_zh"], entry["text_en"]) == (reason["text_zh"],
                                                            reason["text_en"])
            seen.add(entry["kind"])
        partial = decision.get("partial")
        if partial is not None:
            assert by_code[partial["code"]]["kind"] == "line"
            seen.add("line")
    assert {"favourable", "adverse", "rule", "line"} <= seen
