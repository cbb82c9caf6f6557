"""The standard TOML parser on every supported Python: ``tomllib`` (3.11+) or ``tomli``, its backport, on 3.10.

Import it from here (``from lora_compat.tomlparse import tomllib``) so the version switch is written once;
``tomli`` is a dependency only where ``tomllib`` is missing (``pyproject.toml``).
"""

from __future__ import annotations

import sys

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10
    import tomli as tomllib

__all__ = ["tomllib"]
