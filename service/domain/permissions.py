"""What each role may do or read: one table of capabilities, for the API and the console alike.

A capability names one thing a key may do or read (``audit.verify``); the table gives the
roles that hold it. The API's views (``service.web.auth.requires``) and the console's pages
(``service.web.console.access.requires_capability``) each name a capability, never a role, so the
two cannot grant one thing to different roles. The API's role sets are the contract: a
console page that reads what an operation reads takes that operation's capability.
"""

from __future__ import annotations

# servicing: the bank's loan-servicing system, which reports how approved loans perform.
ROLES = ("channel", "risk_officer", "auditor", "admin", "servicing")

_TABLE: dict[str, tuple[str, ...]] = {
    # A channel sees only its own consents and applications, never a feature, contribution,
    # score internal or model hash.
    "consents.write": ("channel",),
    "consents.read": ("channel", "risk_officer", "auditor"),
    "applications.submit": ("channel",),
    "applications.read": ("channel", "risk_officer", "auditor"),
    "applications.explanation": ("risk_officer", "auditor"),
    "applications.notice": ("channel", "risk_officer"),
    "reviews.request": ("channel",),
    "reviews.read": ("risk_officer",),
    "reviews.resolve": ("risk_officer",),
    "audit.read": ("auditor",),
    "audit.verify": ("auditor",),
    "audit.export": ("auditor",),
    "audit.replay": ("auditor",),
    "outcomes.report": ("servicing",),
    # Drift and calibration; what an administrator watches too.
    "monitoring.read": ("risk_officer", "auditor", "admin"),
    # Outcomes by sex, age band and province: never the administrator's.
    "monitoring.fairness": ("risk_officer", "auditor"),
    "reasons.read": ("channel", "risk_officer", "auditor", "admin"),
    "models.read": ("risk_officer", "auditor", "admin"),
    "strategies.read": ("risk_officer", "auditor", "admin"),
    "strategies.set": ("admin",),
    "backtests.read": ("risk_officer", "auditor"),
    "backtests.run": ("risk_officer",),
    "metrics.read": ("auditor", "admin"),
    "keys.manage": ("admin",),
    # The console is for people: the machines' roles sign in to none of it.
    "console.sign_in": ("risk_officer", "auditor", "admin"),
}

# Each capability's roles in the order of ROLES, so that every listing of them reads alike (a
# role not in ROLES fails here, at import, rather than granting nothing unseen).
CAPABILITIES: dict[str, tuple[str, ...]] = {
    capability: tuple(sorted(roles, key=ROLES.index)) for capability, roles in _TABLE.items()}


def roles_holding(capability: str) -> tuple[str, ...]:
    """Return the roles that hold ``capability``, in the order of ``ROLES``."""
    try:
        return CAPABILITIES[capability]
    except KeyError:
        raise ValueError(f"capability must be one of {', '.join(CAPABILITIES)}; "
                         f"got {capability!r}") from None


def holds(role: str, capability: str) -> bool:
    """Tell whether ``role`` holds ``capability``."""
    return role in roles_holding(capability)


def capabilities_of(role: str) -> frozenset[str]:
    """Return every capability ``role`` holds."""
    return frozenset(c for c, roles in CAPABILITIES.items() if role in roles)
