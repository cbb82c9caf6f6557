"""The lint rules: one file per rule, ``<topic>/<CODE>.py`` (see README.md in this folder: how to add a rule).

:func:`load_all` imports every rule file, which registers its rule (``@register``). Discovery reads the topic
folders' file names, so a new rule is one new file; the registry checks that its code matches the file name.
"""

from __future__ import annotations

import importlib
import os
import re

_RULE_FILE = re.compile(r"^LC\d{3}\.py$")
_loaded = False


def rule_modules() -> list[str]:
    """Dotted module names of every rule file, sorted (topic folders are the sub-packages of this package)."""
    here = os.path.dirname(__file__)
    out = []
    for topic in sorted(os.listdir(here)):
        folder = os.path.join(here, topic)
        if topic.startswith(("_", ".")) or not os.path.isfile(os.path.join(folder, "__init__.py")):
            continue
        out += [f"{__name__}.{topic}.{f[:-3]}" for f in sorted(os.listdir(folder)) if _RULE_FILE.match(f)]
    return out


def load_all() -> None:
    """Import every rule file once (registering its rule)."""
    global _loaded
    if _loaded:
        return
    for mod in rule_modules():
        importlib.import_module(mod)
    _loaded = True
