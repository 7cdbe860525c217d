"""Settings: read from FLASHLOAN_*, validated, and refusing development secrets in production."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.ops.settings import DEV_PII_KEY, Settings, SettingsError

PRODUCTION = {
    "FLASHLOAN_ENV": "production",
    "FLASHLOAN_PII_KEY": "Qm7f3Kx9-Lr2_Vb8Nc1Wd6Zt4Yh5Jg0Ps-Ea7Uo3Ri9",
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


def test_idempotency_keys_expire_after_the_deadline_and_commit_and_are_kept_a_day():
    s = Settings.from_env({})
    assert (s.commit_timeout_s, s.idempotency_expiry_s, s.idempotency_retention_h) == (
        30.0, 40.0, 24.0)
    s = Settings.from_env({"FLASHLOAN_DEADLINE_S": "3", "FLASHLOAN_COMMIT_TIMEOUT_S": "2",
                           "FLASHLOAN_IDEMPOTENCY_RETENTION_H": "0.5"})
    assert (s.idempotency_expiry_s, s.idempotency_retention_h) == (5.0, 0.5)


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
    ("FLASHLOAN_COMMIT_TIMEOUT_S", "0", "COMMIT_TIMEOUT_S must be in"),
    ("FLASHLOAN_IDEMPOTENCY_RETENTION_H", "a day", "must be a number"),
    ("FLASHLOAN_IDEMPOTENCY_RETENTION_H", "0.001", "at least the claim expiry"),
    ("FLASHLOAN_IDEMPOTENCY_RETENTION_H", "nan", "IDEMPOTENCY_RETENTION_H must be"),
    ("FLASHLOAN_IDEMPOTENCY_RETENTION_H", "100000", "at most 8784"),
    ("FLASHLOAN_SOURCES", "carrier-pigeon", "SOURCES must be stub or http"),
])
def test_malformed_settings_name_the_variable(name, value, message):
    with pytest.raises(SettingsError, match=message):
        Settings.from_env({name: value})


def test_http_sources_need_a_url():
    with pytest.raises(SettingsError, match="SOURCES_URL"):
        Settings.from_env({"FLASHLOAN_SOURCES": "http"})


# -- production secrets and the report of every problem --------------------------------------

@pytest.mark.parametrize(("pii_key", "message"), [
    (" " * 32, "at least 32 bytes besides whitespace; got 0"),
    ("\t \n" * 20, "at least 32 bytes besides whitespace; got 0"),
    ("  Qm7f3Kx9-Lr2_Vb8Nc1  ", "at least 32 bytes besides whitespace; got 19"),
    ("p" * 40, "not a random secret"),
    ("abcd" * 10, "not a random secret"),
    (DEV_PII_KEY, "the development key"),
])
def test_production_refuses_a_pii_key_that_is_blank_short_or_guessable(pii_key, message):
    with pytest.raises(SettingsError, match="FLASHLOAN_PII_KEY") as refused:
        Settings.from_env({**PRODUCTION, "FLASHLOAN_PII_KEY": pii_key})
    assert message in str(refused.value)
    if pii_key.strip():
        assert pii_key.strip() not in str(refused.value), "a secret is never echoed"


@pytest.mark.parametrize("pii_key", [
    "Qm7f3Kx9-Lr2_Vb8Nc1Wd6Zt4Yh5Jg0Ps-Ea7Uo3Ri9",   # secrets.token_urlsafe(33)
    "6f1d0c9a4b3e8f2d7a5c1e0b9d8f7a6c5b4e3d2f1a0b9c8d7e6f5a4b3c2d1e0f",  # 32 random bytes, hex
    "kT+2vQ9sLm4Xw/8ZcN1rE6yB3uH7pJ0aDfG5iK9oR2M=",   # 32 random bytes, base64
])
def test_production_takes_a_pii_key_made_as_the_docs_say(pii_key):
    assert Settings.from_env({**PRODUCTION, "FLASHLOAN_PII_KEY": pii_key}).pii_key == pii_key


@pytest.mark.parametrize(("signing_key", "message"), [
    ("x", "32-byte Ed25519 seed"),
    ("ab" * 31, "32-byte Ed25519 seed"),
    ("zz" * 32, "32-byte Ed25519 seed"),
    ("   ", "FLASHLOAN_SIGNING_KEY must be set"),
    ("/nonexistent/checkpoint-key.pem", "must be an unencrypted PEM private key"),
])
def test_production_refuses_a_signing_key_it_cannot_load(signing_key, message):
    with pytest.raises(SettingsError, match="FLASHLOAN_SIGNING_KEY") as refused:
        Settings.from_env({**PRODUCTION, "FLASHLOAN_SIGNING_KEY": signing_key})
    assert message in str(refused.value)


def _pem(key) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def test_production_takes_a_signing_key_file_of_the_checkpoints_key_type(tmp_path):
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519

    good = tmp_path / "checkpoint-key.pem"
    good.write_bytes(_pem(ed25519.Ed25519PrivateKey.generate()))
    assert Settings.from_env({**PRODUCTION, "FLASHLOAN_SIGNING_KEY": str(good)}).signing_key
    other = tmp_path / "other-key.pem"
    other.write_bytes(_pem(ec.generate_private_key(ec.SECP256R1())))
    with pytest.raises(SettingsError, match="must hold an Ed25519 key"):
        Settings.from_env({**PRODUCTION, "FLASHLOAN_SIGNING_KEY": str(other)})


def test_a_signing_key_set_outside_production_must_load_too():
    with pytest.raises(SettingsError, match="FLASHLOAN_SIGNING_KEY"):
        Settings.from_env({"FLASHLOAN_SIGNING_KEY": "x"})
    assert Settings.from_env({}).signing_key is None  # unset: a development key is made


def test_every_problem_is_reported_at_once():
    env = {**PRODUCTION, "FLASHLOAN_PII_KEY": " " * 32, "FLASHLOAN_SIGNING_KEY": "x",
           "FLASHLOAN_SOURCES": "stub", "FLASHLOAN_DEADLINE_S": "soon",
           "FLASHLOAN_RATE_LIMIT": "plenty", "FLASHLOAN_KEY_CACHE_S": "-1"}
    del env["FLASHLOAN_DATABASE_URL"]
    with pytest.raises(SettingsError) as refused:
        Settings.from_env(env)
    problems = refused.value.problems
    named = ["PII_KEY", "SIGNING_KEY", "SOURCES must be http", "DATABASE_URL", "DEADLINE_S",
             "RATE_LIMIT", "KEY_CACHE_S"]
    assert len(problems) == len(named), problems
    for name in named:
        assert sum(f"FLASHLOAN_{name}" in problem for problem in problems) == 1, name
    message = str(refused.value)
    assert message.startswith("7 settings are not usable:")
    assert all(problem in message for problem in problems)


def test_one_problem_is_reported_as_itself():
    with pytest.raises(SettingsError) as refused:
        Settings.from_env({**PRODUCTION, "FLASHLOAN_SIGNING_KEY": "x"})
    assert len(refused.value.problems) == 1
    assert str(refused.value) == refused.value.problems[0]


def test_serve_refuses_to_start_naming_every_problem(monkeypatch):
    from click.testing import CliRunner

    from service.cli.main import main

    def started(*argv: object) -> None:
        raise AssertionError("serve started gunicorn with unusable settings")

    monkeypatch.setattr("os.execv", started)
    env = {**PRODUCTION, "FLASHLOAN_PII_KEY": " " * 32, "FLASHLOAN_SIGNING_KEY": "x"}
    result = CliRunner(env=env).invoke(main, ["serve"])
    assert result.exit_code == 1, result.output
    assert result.output.startswith("Error: 2 settings are not usable:")
    assert "FLASHLOAN_PII_KEY" in result.output and "FLASHLOAN_SIGNING_KEY" in result.output


@pytest.mark.parametrize(("name", "value", "message"), [
    ("FLASHLOAN_RATE_LIMIT", "lots", "RATE_LIMIT must be"),
    ("FLASHLOAN_AUTH_FAILURE_LIMIT", "0/minute", "AUTH_FAILURE_LIMIT must be"),
    ("FLASHLOAN_KEY_CACHE_S", "301", "KEY_CACHE_S must be in"),
    ("FLASHLOAN_KEY_CACHE_S", "nan", "KEY_CACHE_S must be in"),
    ("FLASHLOAN_TRUSTED_PROXIES", "-1", "TRUSTED_PROXIES must be"),
    ("FLASHLOAN_TRUSTED_PROXIES", "one", "must be a number"),
    ("FLASHLOAN_REDIS_URL", "http://cache:6379", "REDIS_URL must be"),
])
def test_malformed_limit_settings_name_the_variable(name, value, message):
    with pytest.raises(SettingsError, match=message):
        Settings.from_env({name: value})


def test_limit_settings_are_read_from_the_environment():
    s = Settings.from_env({"FLASHLOAN_RATE_LIMIT": "10/second;100/minute",
                           "FLASHLOAN_AUTH_FAILURE_LIMIT": "5/minute",
                           "FLASHLOAN_KEY_CACHE_S": "2.5", "FLASHLOAN_TRUSTED_PROXIES": "1",
                           "FLASHLOAN_REDIS_URL": "redis://cache:6379/0"})
    assert (s.rate_limit, s.auth_failure_limit, s.key_cache_s, s.trusted_proxies,
            s.redis_url) == ("10/second;100/minute", "5/minute", 2.5, 1, "redis://cache:6379/0")
    d = Settings.from_env({})
    assert (d.auth_failure_limit, d.key_cache_s, d.trusted_proxies) == ("60/minute", 30.0, 0)


@pytest.mark.parametrize(("name", "value", "message"), [
    ("FLASHLOAN_BACKTEST_PROCESSES", "-1", "BACKTEST_PROCESSES must be a count"),
    ("FLASHLOAN_BACKTEST_QUEUE_LIMIT", "0", "BACKTEST_QUEUE_LIMIT must be a count"),
    ("FLASHLOAN_BACKTESTS_PER_REQUESTER", "21", r"from 1 to FLASHLOAN_BACKTEST_QUEUE_LIMIT \(20\)"),
    ("FLASHLOAN_BACKTESTS_PER_REQUESTER", "a few", "must be a number"),
])
def test_malformed_backtest_settings_name_the_variable(name, value, message):
    with pytest.raises(SettingsError, match=message):
        Settings.from_env({name: value})


def test_backtest_settings_are_read_from_the_environment():
    s = Settings.from_env({"FLASHLOAN_BACKTEST_PROCESSES": "0",
                           "FLASHLOAN_BACKTESTS_PER_REQUESTER": "5",
                           "FLASHLOAN_BACKTEST_QUEUE_LIMIT": "50"})
    assert (s.backtest_processes, s.backtests_per_requester, s.backtest_queue_limit) == (0, 5, 50)
    d = Settings.from_env({})
    assert (d.backtest_processes, d.backtests_per_requester, d.backtest_queue_limit) == (1, 3, 20)
