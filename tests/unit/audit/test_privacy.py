"""Pseudonymisation: keyed HMAC of national IDs, masked names and mobiles, answer digests."""

from __future__ import annotations

import pytest

from audit.privacy import Pseudonymiser, digest_source_answer, mask_mobile, mask_name

ID = "11010519491231002X"


def test_national_id_is_hmac_sha256_of_the_normalised_id() -> None:
    # Reproducible with: printf 11010519491231002X | openssl dgst -sha256 -hmac test-key
    expected = "e7e0eb61ae93a5d9c2f43cd2056a34d92ff70ef7a296f76090e36c880b9f26bb"
    pseudonymiser = Pseudonymiser("test-key")
    assert pseudonymiser.national_id(ID) == expected
    assert pseudonymiser.national_id(" 11010519491231002x ") == expected
    assert Pseudonymiser(b"test-key").national_id(ID) == expected


def test_other_keys_and_other_ids_give_unrelated_values() -> None:
    a, b = Pseudonymiser("key-a"), Pseudonymiser("key-b")
    assert a.national_id(ID) != b.national_id(ID)
    assert a.national_id(ID) != a.national_id("110105194912310029")


@pytest.mark.parametrize(
    "bad", ["", "1101051949123100", "11010519491231002Y", "1101051949123100XX"]
)
def test_malformed_ids_are_refused_without_being_echoed(bad: str) -> None:
    with pytest.raises(ValueError, match="national_id must be 17 digits") as caught:
        Pseudonymiser("k").national_id(bad)
    assert not bad or bad not in str(caught.value)


def test_key_is_required_and_never_shown() -> None:
    with pytest.raises(ValueError, match="key must be a non-empty"):
        Pseudonymiser("")
    assert "secret" not in repr(Pseudonymiser("secret"))


@pytest.mark.parametrize(
    ("name", "masked"),
    [
        ("张三", "张*"),
        ("欧阳娜娜", "欧***"),
        ("买买提·艾力", "买*****"),
        (" 李四 ", "李*"),
        ("John Smith", "J*"),
        ("王", "*"),
        ("", ""),
    ],
)
def test_names_keep_only_their_first_character(name: str, masked: str) -> None:
    assert mask_name(name) == masked


@pytest.mark.parametrize(
    "mobile", ["13812348000", "138 1234 8000", "138-1234-8000", "+8613812348000", "8613812348000"]
)
def test_mobiles_keep_the_first_three_and_last_four_digits(mobile: str) -> None:
    assert mask_mobile(mobile) == "138****8000"


@pytest.mark.parametrize("bad", ["1381234800", "23812348000", "138123480001", "abc"])
def test_malformed_mobiles_are_refused_without_being_echoed(bad: str) -> None:
    with pytest.raises(ValueError, match="mobile must be 11 digits starting with 1") as caught:
        mask_mobile(bad)
    assert bad not in str(caught.value)


@pytest.mark.parametrize("call", [mask_name, mask_mobile])
def test_masking_refuses_non_strings(call) -> None:
    with pytest.raises(ValueError, match="must be a string; got int"):
        call(13812348000)


def test_source_answer_digest_ignores_key_order_and_sees_every_value() -> None:
    answer = {"annual_income_last_year": 180000, "withholding_agents_12m": 1}
    reordered = {"withholding_agents_12m": 1, "annual_income_last_year": 180000}
    changed = {"annual_income_last_year": 180001, "withholding_agents_12m": 1}
    assert digest_source_answer(answer) == digest_source_answer(reordered)
    assert digest_source_answer(answer) != digest_source_answer(changed)
    assert len(digest_source_answer(answer)) == 64
