"""The strategy book looks for a newer plan at most once per interval, even when the
database does not answer, and keeps deciding under the plan it has."""

from __future__ import annotations

from types import SimpleNamespace

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from scoring.governance.strategy import Strategy, StrategyPlan
from service.usecases.engines import Engines
from service.usecases.strategies import StrategyBook


class Unreachable:
    """A store whose database never answers; counts the attempts."""

    def __init__(self) -> None:
        self.attempts = 0
        self.engine = SimpleNamespace(connect=self.connect)

    def connect(self):
        self.attempts += 1
        raise ConnectionError("the database is down")


def test_an_unreadable_database_is_asked_again_only_after_the_interval():
    now = [0.0]
    store = Unreachable()
    book = StrategyBook(store, Engines(), StrategyPlan(Strategy("v1", "2026.11")),
                        refresh_s=5.0, min_auc=0.7, clock=lambda: now[0],
                        signing_key=Ed25519PrivateKey.generate())
    assert store.attempts == 1
    for _ in range(50):
        assert book.current().champion.name == "v1/2026.11"
    assert store.attempts == 1
    now[0] = 5.0
    book.current()
    assert store.attempts == 2
