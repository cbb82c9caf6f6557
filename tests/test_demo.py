"""`lora-compat demo` runs offline end to end on the tiny SD1 model."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("torch")
pytest.importorskip("diffusers")

from click.testing import CliRunner  # noqa: E402

from lora_compat.cli import cli  # noqa: E402

pytestmark = pytest.mark.slow


def test_demo_trains_from_a_legacy_preset(tmp_path):
    import torch

    old = torch.get_num_threads()
    try:
        res = CliRunner().invoke(cli, ["demo", "--output", str(tmp_path / "d"), "--steps", "6", "--format", "json"],
                                 catch_exceptions=False)
    finally:
        torch.set_num_threads(old)
    assert res.exit_code == 0, res.output
    summary = json.loads(res.output[res.output.index("{"):])
    steps = summary["steps"]
    assert list(steps) == ["model", "dataset", "preset", "lint", "migrate", "train", "convert", "inspect"]
    assert steps["train"]["ok"] and len(summary["losses"]) == 6
    preset = json.loads((tmp_path / "d" / "legacy_kohya_gui_preset.json").read_text())
    assert preset["lr_warmup"] == "10" and preset["max_resolution"] == "64,64"  # GUI-era string values
    from safetensors import safe_open

    with safe_open(summary["lora"], "pt") as f:
        md = f.metadata()
    assert md["ss_output_name"] == "demo_lora" and md["ss_steps"] == "6"
    for name, step in steps.items():  # every step either worked or says why not
        assert step["ok"] or step["detail"]
