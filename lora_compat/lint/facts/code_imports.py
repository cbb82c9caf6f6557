"""Values that would make sd-scripts import code: dotted class paths."""

from __future__ import annotations

# Derrian's bundled classes (legacy-dialects: Derrian UI TOML): not in sd-scripts; migrate maps them.
DERRIAN_PREFIX = "LoraEasyCustomOptimizer."


def is_dotted_path(v: object) -> bool:
    """A ``package.module.Class`` string (sd-scripts imports it with importlib)."""
    return isinstance(v, str) and "." in v.strip(".")
