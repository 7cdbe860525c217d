"""The record hash: SHA-256 over the canonical JSON array of the chained fields."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from audit.canonical import canonical_json, sha256_hex
from audit.records import GENESIS_HASH, compute_record_hash

FIELDS = (
    GENESIS_HASH,
    1,
    "decision.made",
    "2024-05-01T08:00:00.000000Z",
    "app-1",
    "channel:key_ab12",
    "a" * 64,
)


def test_known_vector() -> None:
    # Reproducible with: printf '["000…0",1,"decision.made",…,"aaa…a"]' | sha256sum
    assert compute_record_hash(*FIELDS) == (
        "6f7952cff437fcfa18428c3611e16abb1de8b75f8cc2bd43f7c9e03a7dbbd731"
    )


@given(
    st.tuples(
        st.text(max_size=70),
        st.integers(min_value=1, max_value=2**62),
        st.text(max_size=64),
        st.text(max_size=27),
        st.none() | st.text(max_size=64),
        st.none() | st.text(max_size=128),
        st.text(max_size=64),
    )
)
def test_equals_sha256_of_the_canonical_array(fields: tuple) -> None:
    assert compute_record_hash(*fields) == sha256_hex(canonical_json(list(fields)))


@pytest.mark.parametrize("index", range(len(FIELDS)))
def test_every_field_changes_the_hash(index: int) -> None:
    changed = list(FIELDS)
    changed[index] = changed[index] + 1 if isinstance(changed[index], int) else "x" + changed[index]
    assert compute_record_hash(*changed) != compute_record_hash(*FIELDS)


def test_missing_application_and_actor_differ_from_empty_text() -> None:
    base = list(FIELDS)
    base[4] = None
    other = list(FIELDS)
    other[4] = ""
    assert compute_record_hash(*base) != compute_record_hash(*other)
