"""The one table of what each role may do: the design's roles, and no other way to name them."""

from __future__ import annotations

import pytest

from service.domain.permissions import CAPABILITIES, ROLES, capabilities_of, holds, roles_holding
from service.web.auth import requires


def test_every_capability_is_held_by_known_roles_listed_in_their_order():
    for capability, roles in CAPABILITIES.items():
        assert roles, capability
        assert list(roles) == [role for role in ROLES if role in roles], capability


def test_an_administrator_manages_keys_and_strategies_and_watches_but_reads_no_application():
    assert capabilities_of("admin") == {
        "console.sign_in", "keys.manage", "strategies.read", "strategies.set", "metrics.read",
        "monitoring.read", "models.read", "reasons.read"}
    for capability in ("applications.explanation", "reviews.read", "audit.read",
                       "audit.verify", "audit.export", "backtests.read", "monitoring.fairness"):
        assert not holds("admin", capability), capability


def test_the_machines_roles_cannot_sign_in_to_the_console():
    assert roles_holding("console.sign_in") == ("risk_officer", "auditor", "admin")
    assert capabilities_of("servicing") == {"outcomes.report"}


def test_a_capability_not_in_the_table_is_refused_by_name():
    with pytest.raises(ValueError, match=r"capability must be one of .*; got 'auditor'"):
        roles_holding("auditor")
    # A view cannot be guarded by a role: only by a capability of the table.
    with pytest.raises(ValueError, match="got 'auditor'"):
        requires("auditor")
