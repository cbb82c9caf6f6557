"""The committed schemas are exactly what scripts/schemas builds from the files in this repository (the option
facts, the annotations, the dataset table): editing one without rebuilding the other fails here. The build needs
nothing outside the repository (no ../shared)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ROOT / "scripts" / "schemas"
SCHEMAS = ROOT / "lora_compat" / "schemas"


def _load(name: str):
    import sys

    sys.path.insert(0, str(SCRIPTS))   # the build script imports sd_scripts_annotations beside it
    try:
        spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(SCRIPTS))


def test_sd_scripts_schema_is_what_the_build_script_makes():
    build = _load("build_sd_scripts_schema")
    committed = (SCHEMAS / "sd-scripts.schema.json").read_text(encoding="utf-8")
    assert build.render(build.build()) == committed, (
        "lora_compat/schemas/sd-scripts.schema.json differs from its sources: run "
        "python scripts/schemas/build_sd_scripts_schema.py > lora_compat/schemas/sd-scripts.schema.json")


def test_dataset_schema_is_what_the_build_script_makes():
    build = _load("build_dataset_schema")
    committed = json.loads((SCHEMAS / "sd-scripts-dataset.schema.json").read_text(encoding="utf-8"))
    assert build.build() == committed, (
        "lora_compat/schemas/sd-scripts-dataset.schema.json differs from its sources: run "
        "python scripts/schemas/build_dataset_schema.py > lora_compat/schemas/sd-scripts-dataset.schema.json")


def test_an_annotation_change_shows_up(monkeypatch):
    """The comparison is real: changing one annotation changes the built schema."""
    build = _load("build_sd_scripts_schema")
    before = build.build()
    monkeypatch.setitem(build.ann.WHAT, "network_dim", "something else entirely.")
    assert build.build()["properties"]["network_dim"] != before["properties"]["network_dim"]
