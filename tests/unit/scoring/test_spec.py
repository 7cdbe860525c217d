"""The feature spec: complete, consistent, and free of protected attributes."""

from __future__ import annotations

import pytest

from scoring.spec import load_spec, parse_spec

SPEC = load_spec()
PROTECTED = ("gender", "sex", "ethnic", "nation", "birthplace", "region", "hukou", "age",
             "religion", "city")


def test_spec_has_between_25_and_40_features_with_texts_in_both_languages():
    assert 25 <= len(SPEC.features) <= 40
    for f in SPEC.features:
        assert f.adverse.zh and f.adverse.en and f.favourable.zh and f.favourable.en
        assert f.group in SPEC.groups
        assert f.monotone in (-1, 0, 1)


def test_reason_codes_are_unique():
    codes = [f.reason_code for f in SPEC.features]
    assert len(codes) == len(set(codes))


@pytest.mark.parametrize("word", PROTECTED)
def test_no_protected_attribute_is_a_feature(word):
    # The age of a credit file is not the applicant's age.
    names = [n.replace("credit_age", "credit-file-age") for n in SPEC.names]
    assert not [n for n in names if word in n.split("_")]


def test_cross_source_features_are_declared():
    for name in ("income_verified_monthly", "income_dispersion", "employer_agreement",
                 "debt_to_income"):
        assert name in SPEC.names


def test_a_spec_with_an_unknown_group_is_refused():
    doc = {"version": "x", "groups": {"a": {"zh": "甲", "en": "A"}},
           "features": [{"name": "f", "group": "b", "type": "numeric", "monotone": 1,
                         "reason_code": "F1", "adverse": {"zh": "坏", "en": "bad"},
                         "favourable": {"zh": "好", "en": "good"}, "actionable": False,
                         "description": ""}]}
    with pytest.raises(ValueError, match="group must be one of"):
        parse_spec(doc)


def test_digest_changes_with_the_document():
    import json

    from scoring.spec import SPEC_PATH

    doc = json.loads(SPEC_PATH.read_text(encoding="utf-8"))
    doc["features"][0]["adverse"]["en"] += "!"
    assert parse_spec(doc).digest != SPEC.digest
