"""Checks of the secrets a deployment is given: usable keys, never echoed in a message."""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

MIN_PII_KEY_BYTES = 32
# An estimate (length × the entropy of its characters' frequencies), made to catch
# placeholders like "x" * 40 or "changeme…" repeated; any key made as the docs say passes.
MIN_PII_KEY_BITS = 128
PII_KEY_RECIPE = "python3 -c 'import secrets; print(secrets.token_urlsafe(48))'"


def estimated_bits(text: str) -> float:
    """Estimate the entropy of ``text`` from its characters' frequencies, in bits."""
    counts = Counter(text)
    total = len(text)
    per_char = -sum(n / total * math.log2(n / total) for n in counts.values()) if total else 0.0
    return total * per_char


def pii_key_problem(key: str, development_key: str) -> str | None:
    """Say why ``key`` cannot be the production PII key, or return None.

    It must be at least 32 bytes besides whitespace, and not a placeholder. The key itself is
    never part of the message.
    """
    name = "FLASHLOAN_PII_KEY"
    if key == development_key:
        return f"{name} must be set to a secret in production; got the development key"
    visible = "".join(key.split())
    size = len(visible.encode())
    if size < MIN_PII_KEY_BYTES:
        return (f"{name} must be a secret of at least {MIN_PII_KEY_BYTES} bytes besides "
                f"whitespace; got {size} (make one with {PII_KEY_RECIPE})")
    bits = estimated_bits(visible)
    if bits < MIN_PII_KEY_BITS:
        return (f"{name} is not a random secret: its characters carry about {bits:.0f} bits "
                f"of entropy, at least {MIN_PII_KEY_BITS} are needed (make one with "
                f"{PII_KEY_RECIPE})")
    return None


def signing_key_problem(setting: str | None, var_dir: Path, production: bool) -> str | None:
    """Say why the checkpoints cannot sign with ``setting`` (FLASHLOAN_SIGNING_KEY), or None.

    The setting is loaded as the checkpoints load it: an Ed25519 seed or PEM file.
    """
    from audit.checkpoints import load_signing_key
    from audit.errors import CheckpointError

    if setting is None or not setting.strip():
        if production or setting is not None:
            return ("FLASHLOAN_SIGNING_KEY must be set in production (a 32-byte Ed25519 seed in "
                    "hex or base64, or the path of a PEM file)" if production else
                    "FLASHLOAN_SIGNING_KEY must not be blank; unset it for a development key")
        return None
    try:
        load_signing_key(setting, var_dir, production)
    except CheckpointError as exc:
        message = str(exc)
        named = "FLASHLOAN_SIGNING_KEY" in message
        return message if named else f"FLASHLOAN_SIGNING_KEY: {message}"
    return None
