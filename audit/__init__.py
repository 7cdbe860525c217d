"""The tamper-evident audit trail: an append-only hash chain on SQLite or PostgreSQL.

Names are loaded on first use, so ``import audit`` stays cheap; see docs/audit.md.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "AuditStore": "audit.store",
    "ChainWriter": "audit.writer",
    "Entry": "audit.writer",
    "Prepared": "audit.writer",
    "prepare": "audit.writer",
    "AuditRecord": "audit.records",
    "AuditQuery": "audit.records",
    "AuditPage": "audit.records",
    "VerifyResult": "audit.records",
    "DocumentCheck": "audit.records",
    "PurgeResult": "audit.records",
    "GENESIS_HASH": "audit.records",
    "compute_record_hash": "audit.records",
    "canonical_json": "audit.canonical",
    "sha256_hex": "audit.canonical",
    "Pseudonymiser": "audit.privacy",
    "mask_name": "audit.privacy",
    "mask_mobile": "audit.privacy",
    "digest_source_answer": "audit.privacy",
    "Checkpoint": "audit.checkpoints",
    "load_signing_key": "audit.checkpoints",
    "sign_checkpoint": "audit.checkpoints",
    "write_checkpoint": "audit.checkpoints",
    "load_checkpoints": "audit.checkpoints",
    "verify_checkpoint_signature": "audit.checkpoints",
    "public_key_hex": "audit.checkpoints",
    "AuditError": "audit.errors",
    "CommitOutcomeUnknown": "audit.errors",
    "InvalidCursor": "audit.errors",
    "InvalidRange": "audit.errors",
    "PurgeRefused": "audit.errors",
    "CheckpointError": "audit.errors",
    "UnsupportedDatabase": "audit.errors",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'audit' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return __all__
