"""Settings for every part of the service, read from ``FLASHLOAN_*`` in one place."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

PREFIX = "FLASHLOAN_"

DEV_PII_KEY = "development-pii-key-do-not-use-in-production"
DEFAULT_DATABASE_URL = "sqlite:///var/flashloan.db"
MAX_IDEMPOTENCY_RETENTION_H = 24 * 366  # a year: keys are for retries, not for records
MAX_KEY_CACHE_S = 300  # a revoked key is refused at most this long after its revocation
MAX_TRUSTED_PROXIES = 10
MAX_BACKTEST_PROCESSES = 16
MAX_BACKTEST_QUEUE = 1000
REDIS_SCHEMES = ("redis://", "rediss://", "redis+unix://")


class SettingsError(ValueError):
    """Settings that are missing, malformed or unsafe for the environment: every problem."""

    def __init__(self, *problems: str) -> None:
        self.problems = list(problems)
        if len(problems) == 1:
            message = problems[0]
        else:
            message = f"{len(problems)} settings are not usable:\n" + "\n".join(
                f"- {problem}" for problem in problems)
        super().__init__(message)


_FOLDERS = ("var_dir", "models_dir", "policies_dir")


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
    commit_timeout_s: float = 30.0
    idempotency_retention_h: float = 24.0
    checkpoint_every_records: int = 1000
    checkpoint_every_s: float = 300.0
    pii_key: str = DEV_PII_KEY
    signing_key: str | None = None
    var_dir: Path = field(default_factory=lambda: Path("var"))
    redis_url: str | None = None
    rate_limit: str = "600/minute"
    auth_failure_limit: str = "60/minute"
    key_cache_s: float = 30.0
    trusted_proxies: int = 0
    threads: int = 8
    max_body_bytes: int = 64 * 1024
    policies_dir: Path | None = None
    # How long a worker may decide under a strategy plan after it was changed.
    strategy_refresh_s: float = 5.0
    # The least AUC (held-out, on the model card) of a model promoted to a live role.
    promotion_min_auc: float = 0.70
    # A Dask scheduler (tcp://host:port) that decides the API's backtests; None: their own
    # processes decide them.
    dask_address: str | None = None
    # Processes each worker runs backtests in at once (0: this worker runs none; others do).
    backtest_processes: int = 1
    # Backtests waiting or running that one requester may have, and that all may.
    backtests_per_requester: int = 3
    backtest_queue_limit: int = 20

    @property
    def is_production(self) -> bool:
        return self.env == "production"

    @property
    def idempotency_expiry_s(self) -> float:
        """How long an Idempotency-Key claim lives: the deadline plus the commit timeout."""
        return self.deadline_s + self.commit_timeout_s

    @property
    def model_search(self) -> tuple[Path, ...]:
        """Folders of model versions besides the shipped ones (newer, or kept for replay)."""
        return (Path(self.models_dir),) if self.models_dir else ()

    @property
    def policy_search(self) -> tuple[Path, ...]:
        """Folders of policy versions besides the shipped ones."""
        return (Path(self.policies_dir),) if self.policies_dir else ()

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read the settings from the environment (``FLASHLOAN_*``)."""
        env = os.environ if environ is None else environ

        def get(name: str) -> str | None:
            value = env.get(PREFIX + name)
            return value if value not in (None, "") else None

        values: dict[str, object] = {}
        unreadable: list[str] = []
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
            ("AUTH_FAILURE_LIMIT", "auth_failure_limit"),
            ("DASK_ADDRESS", "dask_address"),
        ):
            value = get(name)
            if value is not None:
                values[attr] = value
        if (var_dir := get("VAR_DIR")) is not None:
            values["var_dir"] = Path(var_dir)
        if (models_dir := get("MODELS_DIR")) is not None:
            values["models_dir"] = Path(models_dir)
        if (policies_dir := get("POLICIES_DIR")) is not None:
            values["policies_dir"] = Path(policies_dir)
        if ("database_url" not in values and var_dir is not None
                and values.get("env") != "production"):
            # The embedded default follows the var folder.
            values["database_url"] = f"sqlite:///{Path(var_dir) / 'flashloan.db'}"
        for name, attr, kind in (("DEADLINE_S", "deadline_s", float),
                                 ("COMMIT_TIMEOUT_S", "commit_timeout_s", float),
                                 ("IDEMPOTENCY_RETENTION_H", "idempotency_retention_h", float),
                                 ("CHECKPOINT_EVERY_RECORDS", "checkpoint_every_records", int),
                                 ("CHECKPOINT_EVERY_S", "checkpoint_every_s", float),
                                 ("KEY_CACHE_S", "key_cache_s", float),
                                 ("TRUSTED_PROXIES", "trusted_proxies", int),
                                 ("MAX_BODY_BYTES", "max_body_bytes", int),
                                 ("THREADS", "threads", int),
                                 ("STRATEGY_REFRESH_S", "strategy_refresh_s", float),
                                 ("PROMOTION_MIN_AUC", "promotion_min_auc", float),
                                 ("BACKTEST_PROCESSES", "backtest_processes", int),
                                 ("BACKTESTS_PER_REQUESTER", "backtests_per_requester", int),
                                 ("BACKTEST_QUEUE_LIMIT", "backtest_queue_limit", int)):
            raw = get(name)
            if raw is not None:
                try:
                    values[attr] = kind(raw)
                except ValueError:
                    unreadable.append(f"{PREFIX}{name} must be a number; got {raw!r}")
        settings = cls(**values)  # type: ignore[arg-type]
        problems = unreadable + settings.problems()
        if problems:
            raise SettingsError(*problems)
        return settings

    def with_overrides(self, **changes: object) -> Settings:
        """Return a copy with some settings changed, validated; folders may be given as text."""
        for name in _FOLDERS:
            if isinstance(changes.get(name), str):
                changes[name] = Path(str(changes[name]))
        settings = replace(self, **changes)  # type: ignore[arg-type]
        settings.validate()
        return settings

    def validate(self) -> None:
        """Refuse settings that are malformed, or unsafe in production, naming every problem."""
        problems = self.problems()
        if problems:
            raise SettingsError(*problems)

    def problems(self) -> list[str]:
        """Say what is malformed, or unsafe in production: every problem, not the first."""
        from service.ops.secret_checks import pii_key_problem, signing_key_problem

        problems: list[str] = []
        if self.env not in ("development", "test", "production"):
            problems.append(
                f"{PREFIX}ENV must be development, test or production; got {self.env!r}"
            )
        if self.sources not in ("stub", "http"):
            problems.append(f"{PREFIX}SOURCES must be stub or http; got {self.sources!r}")
        if self.sources == "http" and not self.sources_url:
            problems.append(f"{PREFIX}SOURCES_URL must be set when {PREFIX}SOURCES=http")
        if not 0 < self.deadline_s <= 120:
            problems.append(
                f"{PREFIX}DEADLINE_S must be in (0, 120] seconds; got {self.deadline_s}"
            )
        if not 0 < self.commit_timeout_s <= 120:
            problems.append(
                f"{PREFIX}COMMIT_TIMEOUT_S must be in (0, 120] seconds; "
                f"got {self.commit_timeout_s}"
            )
        if not (self.idempotency_expiry_s <= self.idempotency_retention_h * 3600
                <= MAX_IDEMPOTENCY_RETENTION_H * 3600):
            problems.append(
                f"{PREFIX}IDEMPOTENCY_RETENTION_H must be in hours, at least the claim expiry "
                f"({PREFIX}DEADLINE_S + {PREFIX}COMMIT_TIMEOUT_S = "
                f"{self.idempotency_expiry_s:g} s) and at most {MAX_IDEMPOTENCY_RETENTION_H}; "
                f"got {self.idempotency_retention_h}"
            )
        if not 1 <= self.checkpoint_every_records <= 10**9:
            problems.append(
                f"{PREFIX}CHECKPOINT_EVERY_RECORDS must be a number of records from 1 to 10^9; "
                f"got {self.checkpoint_every_records}"
            )
        if not 1 <= self.checkpoint_every_s <= 7 * 24 * 3600:
            problems.append(
                f"{PREFIX}CHECKPOINT_EVERY_S must be in [1, 604800] seconds (a week); "
                f"got {self.checkpoint_every_s}"
            )
        if not 0 < self.strategy_refresh_s <= 300:
            problems.append(f"{PREFIX}STRATEGY_REFRESH_S must be in (0, 300] seconds; "
                            f"got {self.strategy_refresh_s}")
        if self.dask_address is not None and not self.dask_address.startswith("tcp://"):
            problems.append(f"{PREFIX}DASK_ADDRESS must be a scheduler's tcp://host:port; "
                            f"got {self.dask_address!r}")
        if not 0.5 <= self.promotion_min_auc < 1:
            problems.append(f"{PREFIX}PROMOTION_MIN_AUC must be in [0.5, 1); "
                            f"got {self.promotion_min_auc}")
        problems += self._backtest_problems()
        problems += self._limit_problems()
        if self.is_production:
            problems.append(pii_key_problem(self.pii_key, DEV_PII_KEY) or "")
        problems.append(signing_key_problem(self.signing_key, self.var_dir,
                                            self.is_production) or "")
        if self.is_production:
            if self.sources == "stub":
                problems.append(f"{PREFIX}SOURCES must be http in production")
            if self.database_url == DEFAULT_DATABASE_URL:
                problems.append(f"{PREFIX}DATABASE_URL must be set in production")
        return [problem for problem in problems if problem]

    def _backtest_problems(self) -> list[str]:
        problems = []
        if not 0 <= self.backtest_processes <= MAX_BACKTEST_PROCESSES:
            problems.append(f"{PREFIX}BACKTEST_PROCESSES must be a count of processes from 0 "
                            f"to {MAX_BACKTEST_PROCESSES}; got {self.backtest_processes}")
        if not 1 <= self.backtest_queue_limit <= MAX_BACKTEST_QUEUE:
            problems.append(f"{PREFIX}BACKTEST_QUEUE_LIMIT must be a count of backtests from "
                            f"1 to {MAX_BACKTEST_QUEUE}; got {self.backtest_queue_limit}")
        if not 1 <= self.backtests_per_requester <= max(self.backtest_queue_limit, 1):
            problems.append(f"{PREFIX}BACKTESTS_PER_REQUESTER must be a count of backtests "
                            f"from 1 to {PREFIX}BACKTEST_QUEUE_LIMIT "
                            f"({self.backtest_queue_limit}); got {self.backtests_per_requester}")
        return problems

    def _limit_problems(self) -> list[str]:
        from limits import parse_many

        problems = []
        for name, rate in (("RATE_LIMIT", self.rate_limit),
                           ("AUTH_FAILURE_LIMIT", self.auth_failure_limit)):
            try:
                usable = all(item.amount > 0 for item in parse_many(rate))
            except ValueError:
                usable = False
            if not usable:
                problems.append(f"{PREFIX}{name} must be a rate like 600/minute (several: "
                                f"10/second;600/minute); got {rate!r}")
        if not 0 <= self.key_cache_s <= MAX_KEY_CACHE_S:
            problems.append(f"{PREFIX}KEY_CACHE_S must be in [0, {MAX_KEY_CACHE_S}] seconds; "
                            f"got {self.key_cache_s}")
        if not 0 <= self.trusted_proxies <= MAX_TRUSTED_PROXIES:
            problems.append(f"{PREFIX}TRUSTED_PROXIES must be a count of proxies from 0 to "
                            f"{MAX_TRUSTED_PROXIES}; got {self.trusted_proxies}")
        if self.redis_url is not None and not self.redis_url.startswith(REDIS_SCHEMES):
            # The URL may hold a password: only its scheme is repeated.
            scheme = self.redis_url.partition("://")[0] if "://" in self.redis_url else ""
            problems.append(f"{PREFIX}REDIS_URL must be a redis://, rediss:// or "
                            f"redis+unix:// URL; got one with the scheme {scheme!r}")
        return problems
