"""The policy in force over HTTP: every request's body is checked against it.

The composition root gives the app one source of the policy in force (the strategy book's
champion); the schemas' bounds on amounts and terms read it while a request is answered,
the API document is written with it as it is served, and the console shows its grades and
terms: all follow a change of strategies together.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import ExitStack

from flask import Flask, g

from scoring.online.policy import Policy
from service.web.schemas import checked_against

__all__ = ["install_policy"]


def install_policy(app: Flask, policy: Callable[[], Policy]) -> None:
    """Check the amounts and terms of every request's body against ``policy()``, asked when
    a body is checked (so a request that reads no body costs nothing)."""

    @app.before_request
    def _check_against_policy() -> None:
        checks = ExitStack()
        checks.enter_context(checked_against(policy))
        g.policy_checks = checks

    @app.teardown_request
    def _stop_checking(exc: BaseException | None) -> None:
        checks = g.pop("policy_checks", None)
        if checks is not None:
            checks.close()
