"""`lora-compat demo` runs offline end to end on the tiny SD1 model."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("torch")
pytest.importorskip("diffusers")

from click.testing import CliRunner

from lora_compat.cli import cli

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
    assert all(step["ok"] for step in steps.values()), steps  # every wing ran (called through its API)
    assert (tmp_path / "d" / "migrated.toml").is_file()
    assert (tmp_path / "d" / "converted-peft" / "unet" / "adapter_config.json").is_file()
    assert "kohya sd1 lora" in steps["inspect"]["detail"]


def test_demo_flux1_lints_plans_trains_converts(tmp_path):
    import torch

    old = torch.get_num_threads()
    try:
        res = CliRunner().invoke(cli, ["demo", "--family", "flux1", "--output", str(tmp_path / "d"), "--steps", "4",
                                       "--format", "json"], catch_exceptions=False)
    finally:
        torch.set_num_threads(old)
    assert res.exit_code == 0, res.output
    summary = json.loads(res.output[res.output.index("{"):])
    steps = summary["steps"]
    assert summary["family"] == "flux1"
    assert list(steps) == ["model", "dataset", "preset", "lint", "migrate", "plan", "train", "convert", "inspect"]
    for name in ("lint", "migrate", "plan", "train", "convert", "inspect"):
        assert steps[name]["ok"], (name, steps[name])
    assert "migrated.toml" in steps["migrate"]["detail"]   # FLUX.1 migrates: the demo trains from the native file
    assert "flux1-dev" in steps["plan"]["detail"] and len(summary["losses"]) == 4
    from safetensors import safe_open

    with safe_open(summary["lora"], "pt") as f:
        md = f.metadata()
    assert md["ss_network_module"] == "networks.lora_flux" and md["modelspec.architecture"] == "flux-1-dev/lora"
    with safe_open(str(tmp_path / "d" / "converted-diffusers.safetensors"), "pt") as f:
        assert all(k.startswith("transformer.") for k in f.keys())  # noqa: SIM118 (safe_open is no dict)
