"""What the risk officer reads of a decision made with a source unknown, and the warm-up."""

from __future__ import annotations

from datasources.base import INCOME_SCOPES
from scoring.online.model import DEFAULT_MODEL_VERSION, fallback_version
from scoring.online.spec import load_spec
from scoring.online.unknown import unknown_features

LISTS = ("unknown_sources", "unknown_features", "partial_features", "undetermined_rules")


def scored(client, people: list[str]) -> list[str]:
    """Apply for each person; return the ids of the applications that were scored."""
    ids = []
    for nid in people:
        answer = client.apply(nid).get_json()
        if answer["decision"] is not None:
            ids.append(answer["application_id"])
    assert ids, "no application was scored"
    return ids


def test_an_explanation_with_every_source_names_nothing_unknown(client, people):
    aid = scored(client, people[:3])[0]
    e = client.get(f"/v1/applications/{aid}/explanation", who="risk_officer").get_json()
    assert {name: e[name] for name in LISTS} == {name: [] for name in LISTS}
    svg = client.get(f"/v1/applications/{aid}/explanation.svg", who="risk_officer")
    assert "did not answer" not in svg.get_data(as_text=True)


def test_an_explanation_names_the_source_that_did_not_answer(make_client, people):
    client = make_client(stub_faults="income_tax=error:1.0")
    expected = unknown_features(load_spec(), ("income_tax",))
    for aid in scored(client, people[:6]):
        e = client.get(f"/v1/applications/{aid}/explanation", who="risk_officer").get_json()
        assert e["model_version"] == fallback_version(DEFAULT_MODEL_VERSION, "income_tax")
        assert e["unknown_sources"] == ["income_tax"]
        assert e["unknown_features"] == list(expected.unknown)
        assert e["partial_features"] == list(expected.partial)
        assert isinstance(e["undetermined_rules"], list)
        assert not set(e["unknown_features"]) & {f["name"] for f in e["features"]}
        svg = client.get(f"/v1/applications/{aid}/explanation.svg", who="risk_officer")
        text = svg.get_data(as_text=True)
        assert "Unknown (did not answer): income_tax" in text
        assert "unknown (did not answer): income_tax</title>" in text


def test_every_model_has_decided_once_before_the_first_request(client):
    wired = client.app.extensions["flashloan"]
    assert set(wired.engine.fallbacks) == set(INCOME_SCOPES)
    assert wired.warmed_models == (
        DEFAULT_MODEL_VERSION,
        *(fallback_version(DEFAULT_MODEL_VERSION, scope) for scope in wired.engine.fallbacks))
