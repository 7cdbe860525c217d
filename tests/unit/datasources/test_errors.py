"""Errors: retryability and the mapping of HTTP statuses."""

from __future__ import annotations

import pytest

from datasources.errors import (
    CircuitOpen,
    ConsentMissing,
    SourceError,
    SourceMalformed,
    SourceTimeout,
    SourceUnavailable,
    error_for_status,
)


def test_retryable_defaults():
    assert SourceUnavailable("income_tax", "x").retryable
    assert SourceTimeout("income_tax", "x").retryable
    assert not SourceMalformed("income_tax", "x").retryable
    assert not CircuitOpen("income_tax", "x").retryable
    assert not ConsentMissing("income_tax", "expired", "x").retryable
    assert not SourceUnavailable("income_tax", "x", retryable=False).retryable


def test_every_error_is_a_source_error_with_its_scope():
    errors = (SourceUnavailable("court_records", "x"), ConsentMissing("court_records", "w", "d"))
    for error in errors:
        assert isinstance(error, SourceError)
        assert error.scope == "court_records"
        assert str(error).startswith("court_records: ")


@pytest.mark.parametrize(("status", "kind", "retryable"), [
    (500, SourceUnavailable, True),
    (503, SourceUnavailable, True),
    (501, SourceUnavailable, False),
    (429, SourceUnavailable, True),
    (404, SourceUnavailable, False),
    (401, SourceUnavailable, False),
    (302, SourceMalformed, False),
])
def test_error_for_status(status, kind, retryable):
    error = error_for_status("income_tax", status)
    assert type(error) is kind
    assert error.retryable is retryable
    assert str(status) in str(error)
