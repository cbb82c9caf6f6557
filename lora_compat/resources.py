"""The data files lora-compat ships inside its package: ``schemas/`` (option meaning) and ``data/`` (model configs).

Both folders live inside the ``lora_compat`` package (``lora_compat/schemas/``, ``lora_compat/data/``) and are
found through :mod:`importlib.resources`, so a wheel installed non-editable, an editable install, an sdist build
and a plain checkout on ``sys.path`` all read the same files. The top-level ``schemas`` entry of the repository
is a symbolic link to ``lora_compat/schemas`` for people browsing the sources; nothing reads it.
"""

from __future__ import annotations

import json
import sys
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    from importlib.resources.abc import Traversable
else:  # Python 3.10
    from importlib.abc import Traversable

PACKAGE = "lora_compat"


def package_files() -> Traversable:
    """The ``lora_compat`` package's own files, wherever it is installed."""
    return files(PACKAGE)


# The package folder on disk (pip always unpacks wheels). Training hands the model-config folders under
# ``data/models`` to diffusers/transformers, which need real paths.
PACKAGE_DIR = Path(__file__).resolve().parent
DATA_DIR = PACKAGE_DIR / "data"


def schema_names() -> list[str]:
    """The file names of every shipped schema (``*.schema.json``), sorted."""
    return sorted(p.name for p in schemas_dir().iterdir() if p.name.endswith(".schema.json"))


def schemas_dir() -> Traversable:
    """The shipped ``schemas/`` folder (the one source of option meaning), inside the package."""
    folder = package_files() / "schemas"
    if not folder.is_dir():
        raise FileNotFoundError(f"the lora_compat package at {package_files()} has no schemas/ folder: "
                                "the installation is incomplete, reinstall lora-compat")
    return folder


@cache
def load_schema(name: str) -> dict[str, Any]:
    """Load ``schemas/<name>`` (e.g. ``sd-scripts.schema.json``) from the package, cached."""
    return json.loads((schemas_dir() / name).read_text(encoding="utf-8"))
