"""Who is calling: a value every use case takes, free of the web layer."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the key's id, name and role."""

    key_id: str
    name: str
    role: str

    @property
    def actor(self) -> str:
        """The audit log's ``actor``: role and key id, never the secret."""
        return f"{self.role}:{self.key_id}"
