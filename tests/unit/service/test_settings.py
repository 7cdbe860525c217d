"""Settings: read from FLASHLOAN_*, validated, and refusing development secrets in production."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.settings import DEV_PII_KEY, Settings, SettingsError

PRODUCTION = {
    "FLASHLOAN_ENV": "production",
    "FLASHLOAN_PII_KEY": "p" * 40,
    "FLASHLOAN_SIGNING_KEY": "ab" * 32,
    "FLASHLOAN_SOURCES": "http",
    "FLASHLOAN_SOURCES_URL": "https://sources.bank.internal",
    "FLASHLOAN_DATABASE_URL": "postgresql://flashloan@db/flashloan",
}


def test_defaults_are_safe_for_development():
    s = Settings.from_env({})
    assert s.env == "development" and s.sources == "stub" and s.pii_key == DEV_PII_KEY
    assert s.database_url.startswith("sqlite:///") and s.deadline_s == 10


def test_values_are_read_from_the_environment():
    s = Settings.from_env({"FLASHLOAN_DEADLINE_S": "2.5", "FLASHLOAN_VAR_DIR": "/tmp/x",
                           "FLASHLOAN_STUB_FAULTS": "court_records=hang",
                           "FLASHLOAN_MODELS_DIR": "/models"})
    assert s.deadline_s == 2.5 and s.var_dir == Path("/tmp/x")
    assert s.stub_faults == "court_records=hang" and s.model_search == (Path("/models"),)


def test_a_complete_production_configuration_starts():
    assert Settings.from_env(PRODUCTION).is_production


@pytest.mark.parametrize(("missing", "message"), [
    ("FLASHLOAN_PII_KEY", "PII_KEY"),
    ("FLASHLOAN_SIGNING_KEY", "SIGNING_KEY"),
    ("FLASHLOAN_DATABASE_URL", "DATABASE_URL"),
])
def test_production_refuses_development_defaults(missing, message):
    env = {k: v for k, v in PRODUCTION.items() if k != missing}
    with pytest.raises(SettingsError, match=message):
        Settings.from_env(env)


def test_production_refuses_stub_sources_and_short_secrets():
    with pytest.raises(SettingsError, match="SOURCES must be http"):
        Settings.from_env({**PRODUCTION, "FLASHLOAN_SOURCES": "stub"})
    with pytest.raises(SettingsError, match="at least 32"):
        Settings.from_env({**PRODUCTION, "FLASHLOAN_PII_KEY": "short"})


@pytest.mark.parametrize(("name", "value", "message"), [
    ("FLASHLOAN_DEADLINE_S", "soon", "must be a number"),
    ("FLASHLOAN_DEADLINE_S", "0", "DEADLINE_S must be in"),
    ("FLASHLOAN_ENV", "staging", "ENV must be"),
    ("FLASHLOAN_SOURCES", "carrier-pigeon", "SOURCES must be stub or http"),
])
def test_malformed_settings_name_the_variable(name, value, message):
    with pytest.raises(SettingsError, match=message):
        Settings.from_env({name: value})


def test_http_sources_need_a_url():
    with pytest.raises(SettingsError, match="SOURCES_URL"):
        Settings.from_env({"FLASHLOAN_SOURCES": "http"})
