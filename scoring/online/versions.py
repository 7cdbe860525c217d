"""Model and policy versions: names, never paths.

A version names one entry of a folder of versions (``scoring/models/``, ``scoring/policies/``
or a folder the settings add): letters and digits, then also ``.``, ``_`` and ``-``. It holds
no separator and starts with no dot, so it can name nothing outside its folder.
"""

from __future__ import annotations

import re

VERSION_PATTERN = r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}"
_VERSION = re.compile(VERSION_PATTERN)
# What a message says of a name that is not a version.
VERSION_RULE = "letters, digits, '.', '_' and '-', never a path"


def is_version(text: object) -> bool:
    """Return whether ``text`` is the name of a model or policy version."""
    return isinstance(text, str) and _VERSION.fullmatch(text) is not None
