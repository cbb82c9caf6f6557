"""Read option facts (type, default, enum, range, meaning, annotations) from schemas/.

This is the only module that knows where an option's meaning is written. Everything else asks here.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from lora_compat.resources import load_schema

CANONICAL_SCHEMA = "sd-scripts.schema.json"
DATASET_SCHEMA = "sd-scripts-dataset.schema.json"


@lru_cache(maxsize=None)
def _properties() -> dict[str, dict[str, Any]]:
    return load_schema(CANONICAL_SCHEMA).get("properties", {})


def option_names() -> list[str]:
    """Every canonical option name (sd-scripts long option names, plus pseudo-option ``sdxl``)."""
    return list(_properties())


def is_option(name: str) -> bool:
    return name in _properties()


def spec(name: str) -> dict[str, Any] | None:
    """The schema property of ``name`` (type, default, enum, description, x-* annotations) or None."""
    return _properties().get(name)


def default(name: str) -> Any:
    """sd-scripts' default for ``name`` (None when it has none or the option is unknown)."""
    s = spec(name)
    return None if s is None else s.get("default")


def description(name: str) -> str:
    s = spec(name)
    return "" if s is None else s.get("description", "")
