"""The applicant kept for a deferred application's retry: sealed to one application and key."""

from __future__ import annotations

import pytest

from service.persistence.sealing import ApplicantSeal, SealBroken

APPLICANT = {"national_id": "420106199311082617", "name": "张三", "mobile": "13812348000"}
KEY = "a-pii-key-long-enough-for-the-tests-0123456789"


def test_a_sealed_applicant_opens_for_its_application_only() -> None:
    seal = ApplicantSeal(KEY)
    sealed = seal.seal("a_1", {**APPLICANT, "extra": "not kept"})
    assert seal.open("a_1", sealed) == APPLICANT
    with pytest.raises(SealBroken):
        seal.open("a_2", sealed)


def test_the_sealed_form_holds_nothing_in_clear_and_differs_each_time() -> None:
    seal = ApplicantSeal(KEY)
    one, two = seal.seal("a_1", APPLICANT), seal.seal("a_1", APPLICANT)
    assert one != two
    for value in APPLICANT.values():
        assert value.encode() not in one


def test_another_key_or_an_altered_seal_does_not_open() -> None:
    sealed = ApplicantSeal(KEY).seal("a_1", APPLICANT)
    with pytest.raises(SealBroken):
        ApplicantSeal(KEY + "x").open("a_1", sealed)
    altered = sealed[:-1] + bytes([sealed[-1] ^ 1])
    with pytest.raises(SealBroken):
        ApplicantSeal(KEY).open("a_1", altered)
    with pytest.raises(SealBroken):
        ApplicantSeal(KEY).open("a_1", b"\x02" + sealed[1:])
    assert "a-pii-key" not in repr(ApplicantSeal(KEY))
