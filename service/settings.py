"""Settings for every part of the service, read from ``FLASHLOAN_*`` in one place."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

PREFIX = "FLASHLOAN_"

DEV_PII_KEY = "development-pii-key-do-not-use-in-production"
DEFAULT_DATABASE_URL = "sqlite:///var/flashloan.db"


class SettingsError(ValueError):
    """A setting is missing, malformed or unsafe for the environment."""


@dataclass(frozen=True, slots=True)
class Settings:
    """Every tunable of the service, with safe development defaults."""

    env: str = "development"
    database_url: str = DEFAULT_DATABASE_URL
    model_version: str | None = None
    models_dir: Path | None = None
    policy: str | None = None
    sources: str = "stub"
    sources_url: str | None = None
    stub_latency_ms: str = ""
    stub_faults: str = ""
    stub_fixtures: str | None = None
    deadline_s: float = 10.0
    pii_key: str = DEV_PII_KEY
    signing_key: str | None = None
    var_dir: Path = field(default_factory=lambda: Path("var"))
    redis_url: str | None = None
    rate_limit: str = "600/minute"
    threads: int = 8
    max_body_bytes: int = 64 * 1024

    @property
    def is_production(self) -> bool:
        return self.env == "production"

    @property
    def model_search(self) -> tuple[Path, ...]:
        """Folders of model versions besides the shipped ones (newer, or kept for replay)."""
        return (Path(self.models_dir),) if self.models_dir else ()

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read the settings from the environment (``FLASHLOAN_*``)."""
        env = os.environ if environ is None else environ

        def get(name: str) -> str | None:
            value = env.get(PREFIX + name)
            return value if value not in (None, "") else None

        values: dict[str, object] = {}
        for name, attr in (
            ("ENV", "env"),
            ("DATABASE_URL", "database_url"),
            ("MODEL_VERSION", "model_version"),
            ("POLICY", "policy"),
            ("SOURCES", "sources"),
            ("SOURCES_URL", "sources_url"),
            ("STUB_LATENCY_MS", "stub_latency_ms"),
            ("STUB_FAULTS", "stub_faults"),
            ("STUB_FIXTURES", "stub_fixtures"),
            ("PII_KEY", "pii_key"),
            ("SIGNING_KEY", "signing_key"),
            ("REDIS_URL", "redis_url"),
            ("RATE_LIMIT", "rate_limit"),
        ):
            value = get(name)
            if value is not None:
                values[attr] = value
        if (var_dir := get("VAR_DIR")) is not None:
            values["var_dir"] = Path(var_dir)
        if (models_dir := get("MODELS_DIR")) is not None:
            values["models_dir"] = Path(models_dir)
        if ("database_url" not in values and "var_dir" in values
                and values.get("env") != "production"):
            # The embedded default follows the var folder.
            values["database_url"] = f"sqlite:///{Path(values['var_dir']) / 'flashloan.db'}"
        for name, attr, kind in (("DEADLINE_S", "deadline_s", float),
                                 ("MAX_BODY_BYTES", "max_body_bytes", int),
                                 ("THREADS", "threads", int)):
            raw = get(name)
            if raw is not None:
                try:
                    values[attr] = kind(raw)
                except ValueError:
                    raise SettingsError(
                        f"{PREFIX}{name} must be a number; got {raw!r}"
                    ) from None
        settings = cls(**values)  # type: ignore[arg-type]
        settings.validate()
        return settings

    def with_overrides(self, **changes: object) -> Settings:
        """Return a copy with some settings changed, validated."""
        settings = replace(self, **changes)  # type: ignore[arg-type]
        settings.validate()
        return settings

    def validate(self) -> None:
        """Refuse settings that are malformed, or unsafe in production."""
        if self.env not in ("development", "test", "production"):
            raise SettingsError(
                f"{PREFIX}ENV must be development, test or production; got {self.env!r}"
            )
        if self.sources not in ("stub", "http"):
            raise SettingsError(f"{PREFIX}SOURCES must be stub or http; got {self.sources!r}")
        if self.sources == "http" and not self.sources_url:
            raise SettingsError(f"{PREFIX}SOURCES_URL must be set when {PREFIX}SOURCES=http")
        if not 0 < self.deadline_s <= 120:
            raise SettingsError(
                f"{PREFIX}DEADLINE_S must be in (0, 120] seconds; got {self.deadline_s}"
            )
        if self.is_production:
            if self.pii_key == DEV_PII_KEY or len(self.pii_key) < 32:
                raise SettingsError(
                    f"{PREFIX}PII_KEY must be set to a secret of at least 32 characters "
                    "in production"
                )
            if not self.signing_key:
                raise SettingsError(f"{PREFIX}SIGNING_KEY must be set in production")
            if self.sources == "stub":
                raise SettingsError(f"{PREFIX}SOURCES must be http in production")
            if self.database_url == DEFAULT_DATABASE_URL:
                raise SettingsError(f"{PREFIX}DATABASE_URL must be set in production")
