"""Dataset-config resolution against sd-scripts' own blueprint generator (golden/dataset_blueprints.json)."""

from __future__ import annotations

import json
import math

import pytest

from lora_compat.config.dataset import check_dataset_config, dataset_from_table, resolve_subsets
from lora_compat.config.model import CanonicalConfig, Setting

from shared_data import GOLDEN, golden


def _names() -> list[str]:
    path = GOLDEN / "dataset_blueprints.json"
    if not path.is_file():
        return ["golden-missing"]
    return [c["name"] for c in json.loads(path.read_text(encoding="utf-8"))["cases"]]


def _cfg(cli_args: dict, user_config: dict) -> CanonicalConfig:
    cfg = CanonicalConfig(dialect="sd-scripts-dataset", source="<golden>")
    for k, v in cli_args.items():
        cfg.options[k] = Setting(v)
    cfg.general = {k: Setting(v) for k, v in (user_config.get("general") or {}).items()}
    cfg.datasets = [dataset_from_table(d) for d in user_config.get("datasets") or []]
    return cfg


def _same(a, b) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return isinstance(a, (int, float)) and isinstance(b, (int, float)) and math.isclose(a, b, rel_tol=1e-6)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return a == b


@pytest.mark.parametrize("name", _names())
def test_dataset_blueprint_case(name: str) -> None:
    data = golden("dataset_blueprints.json")
    case = next(c for c in data["cases"] if c["name"] == name)
    errors = check_dataset_config(case["user_config"])
    if case.get("error"):
        expected = case["error"].split(": ", 1)[1]
        assert expected in [e.voluptuous for e in errors]
        return
    assert errors == []
    got = resolve_subsets(_cfg(data["cli_args"], case["user_config"]))
    want = case["datasets"]
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        assert g.is_dreambooth == w["is_dreambooth"]
        assert set(g.params) == set(w["params"])
        assert {k: v for k, v in g.params.items() if not _same(v, w["params"][k])} == {}
        assert len(g.subsets) == len(w["subsets"])
        for gs, ws in zip(g.subsets, w["subsets"], strict=True):
            assert set(gs) == set(ws)
            assert {k: (v, ws[k]) for k, v in gs.items() if not _same(v, ws[k])} == {}


def test_dataset_checks_catch_voluptuous_rules() -> None:
    errs = [e.voluptuous for e in check_dataset_config({
        "general": {"validation_split": 0, "prior_loss_weight": 1.0},
        "datasets": [{"resolution": [512], "subsets": [{"num_repeats": 2}]},
                     {"subsets": [{"image_dir": "a"}, {"image_dir": "b", "metadata_file": "m.json"}]}],
        "Datasets": []})]
    assert "extra keys not allowed @ data['Datasets']" in errs
    assert "extra keys not allowed @ data['general']['prior_loss_weight']" in errs
    assert any(e.startswith("expected float") and e.endswith("['general']['validation_split']") for e in errs)
    assert any(e.endswith("@ data['datasets'][0]['resolution']") for e in errs)
    assert "required key not provided @ data['datasets'][0]['subsets'][0]['image_dir']" in errs
    assert any("cannot be mixed" in e for e in errs)
