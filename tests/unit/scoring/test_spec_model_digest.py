"""The model digest: the part of the spec a trained model depends on, and only that."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from scoring.online.model import list_versions, read_card
from scoring.online.spec import SPEC_PATH, load_spec, parse_spec

SPEC = load_spec()


def _doc() -> dict:
    return json.loads(SPEC_PATH.read_text(encoding="utf-8"))


def _changed(change: Callable[[dict], object]) -> dict:
    doc = _doc()
    change(doc)
    return doc


def _feature(doc: dict, name: str) -> dict:
    return next(f for f in doc["features"] if f["name"] == name)


@pytest.mark.parametrize("change", [
    lambda d: d["features"][0]["label"].update(en="Renamed"),
    lambda d: d["features"][0]["adverse"].update(zh="改"),
    lambda d: d["features"][0]["adverse"].update(code="ZZ01"),
    lambda d: d["features"][0].update(actionable=not d["features"][0]["actionable"]),
    lambda d: d["features"][0].update(description="Another description"),
    lambda d: d["groups"]["income"].update(en="Income, verified"),
])
def test_texts_change_the_document_digest_but_not_the_model_digest(change):
    spec = parse_spec(_changed(change))
    assert spec.digest != SPEC.digest
    assert spec.model_digest == SPEC.model_digest


@pytest.mark.parametrize("change", [
    lambda d: _feature(d, "cr_card_utilization").update(monotone=-1),
    lambda d: _feature(d, "cr_card_utilization").update(type="binary"),
    lambda d: _feature(d, "cr_card_utilization").update(group="income"),
    lambda d: _feature(d, "cr_card_utilization").update(name="cr_card_usage"),
    lambda d: d["features"].reverse(),
    lambda d: d["features"].pop(),
])
def test_what_a_model_reads_changes_the_model_digest(change):
    assert parse_spec(_changed(change)).model_digest != SPEC.model_digest


@pytest.mark.parametrize("version", list_versions())
def test_every_shipped_card_names_the_running_specs_model_digest(version):
    """The shipped models were trained on a spec whose texts have changed since: their cards
    name the model part of that spec, which the running spec shares."""
    assert read_card(version)["spec_model_digest"] == SPEC.model_digest
