"""Where the project's data files live (schemas/, packaged data)."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

PACKAGE_DIR = Path(__file__).resolve().parent
DATA_DIR = PACKAGE_DIR / "data"


def schemas_dir() -> Path:
    """The top-level ``schemas/`` folder (the one source of option meaning)."""
    for cand in (PACKAGE_DIR.parent / "schemas", PACKAGE_DIR / "schemas"):
        if cand.is_dir():
            return cand
    raise FileNotFoundError("schemas/ folder not found next to the lora_compat package")


@lru_cache(maxsize=None)
def load_schema(name: str) -> dict[str, Any]:
    """Load ``schemas/<name>`` (e.g. ``sd-scripts.schema.json``), cached."""
    with open(schemas_dir() / name, encoding="utf-8") as fh:
        return json.load(fh)
