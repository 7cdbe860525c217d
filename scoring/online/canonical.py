"""Digests of the model's documents: the spec and the policy by their canonical JSON, a file
by its bytes.

The canonical JSON is the project's one form (:mod:`canonical`), the same the audit trail
hashes, so that a policy digest recorded in a decision can be recomputed by the same rules.
"""

from __future__ import annotations

import hashlib
from os import PathLike

from canonical import digest

__all__ = ["digest", "file_sha256"]


def file_sha256(path: str | PathLike[str]) -> str:
    """Return the SHA-256 hex digest of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
