"""FLUX.1 sample images and validation in the plan, without torch: what sd-scripts' ``sample_image_inference``
makes of a prompt (defaults, rounding, guidance and CFG, the negative prompt only with CFG), the ``get_schedule``
shift, what FLUX does not read (said, not silent), and ``plan`` showing exactly that."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

from lora_compat.cli import cli
from lora_compat.semantics.flux_sampling import (
    FLUX_SAMPLE_DEFAULTS,
    flux_ignored_prompt_options,
    flux_sample_mu,
    flux_sample_schedule,
    flux_sample_settings,
    flux_sample_size,
)
from lora_compat.semantics.samples import parse_prompt_line


def test_defaults_and_rounding_as_sd_scripts() -> None:
    s = flux_sample_settings(parse_prompt_line("a cat"))
    assert (s.width, s.height, s.sample_steps, s.guidance_scale, s.cfg_scale) == (512, 512, 20, 3.5, 1.0)
    assert FLUX_SAMPLE_DEFAULTS["sample_steps"] == 20
    assert s.negative_prompt is None and s.seed is None
    assert s.image_seq_len == 32 * 32 and s.mu == pytest.approx(0.5 + 0.65 * (1024 - 256) / 3840)
    s = flux_sample_settings(parse_prompt_line("a cat --w 80 --h 67 --d 0 --s 3 --g 2 --l 4"))
    # multiples of 16 (SD: 8), at least 64; seed 0 is a seed
    assert (s.width, s.height, s.seed, s.sample_steps, s.guidance_scale, s.cfg_scale) == (80, 64, 0, 3, 2.0, 4.0)
    assert (s.packed_width, s.packed_height, s.image_seq_len) == (5, 4, 20)
    assert flux_sample_size(40, 512) == 64 and flux_sample_size(1023, 512) == 1008
    assert flux_sample_size(None, 512) == 512


def test_negative_prompt_only_with_cfg() -> None:
    # sd-scripts: "negative prompt is ignored because scale is 1.0"; with CFG an absent --n is ""
    assert flux_sample_settings(parse_prompt_line("a cat --n blurry")).negative_prompt is None
    assert flux_sample_settings(parse_prompt_line("a cat --n blurry --l 2")).negative_prompt == "blurry"
    assert flux_sample_settings(parse_prompt_line("a cat --l 2")).negative_prompt == ""
    assert any("--n is ignored" in p for p in flux_ignored_prompt_options(parse_prompt_line("a cat --n blurry")))
    assert flux_ignored_prompt_options(parse_prompt_line("a cat --n blurry --l 2")) == []


def test_options_flux_does_not_read_are_said() -> None:
    said = flux_ignored_prompt_options(parse_prompt_line("a cat --ss euler_a --fs 3 --ctr 0.5"))
    assert [p.split(":")[0].split(" ")[0] for p in said] == ["--ss", "--fs", "--ctr"]


def test_schedule_values() -> None:
    # 256 tokens: mu = 0.5, so t -> e^0.5 / (e^0.5 + 1/t - 1); 4096 tokens: mu = 1.15
    assert flux_sample_mu(256) == 0.5 and flux_sample_mu(4096) == pytest.approx(1.15)
    sched = flux_sample_schedule(4, 256)
    e = math.exp(0.5)
    want = [1.0, e / (e + 1 / 0.75 - 1), e / (e + 1), e / (e + 3), 0.0]
    assert sched == pytest.approx(want, rel=1e-6)
    assert sched[0] == 1.0 and sched[-1] == 0.0 and sched == sorted(sched, reverse=True)
    assert flux_sample_schedule(4, 256, shift=False) == [1.0, 0.75, 0.5, 0.25, 0.0]
    # a larger image shifts towards high noise
    assert flux_sample_schedule(4, 4096)[2] > sched[2]
    with pytest.raises(ValueError):
        flux_sample_schedule(0, 256)


def _dataset(root: Path, n: int) -> Path:
    folder = root / "1_tst"
    folder.mkdir(parents=True)
    for i in range(n):
        Image.new("RGB", (64, 64), (40 * i, 100, 200)).save(folder / f"{i}.png")
        (folder / f"{i}.txt").write_text(f"picture {i}", encoding="utf-8")
    return root


def _plan(tmp_path: Path, argv: str) -> dict:
    data = _dataset(tmp_path / "data", 4)
    cmd = tmp_path / "train.sh"
    cmd.write_text("accelerate launch flux_train_network.py --pretrained_model_name_or_path tiny:flux1-dev "
                   f"--network_module networks.lora_flux --output_dir {tmp_path / 'out'} --resolution 64 "
                   f"--t5xxl_max_token_length 16 {argv}\n", encoding="utf-8")
    res = CliRunner().invoke(cli, ["plan", str(cmd), "--train-data", str(data), "--format", "json"])
    assert res.exit_code == 0, res.output
    return json.loads(res.output)


def test_plan_shows_flux_samples_as_the_sampler_runs_them(tmp_path) -> None:
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("a red circle --d 5 --s 2 --w 64 --h 64\n"
                       "a blue square --n blurry --d 6 --w 80 --h 67 --s 1 --l 2 --ss k_lms\n", encoding="utf-8")
    plan = _plan(tmp_path, f"--sample_prompts {prompts} --sample_every_n_steps 2 --sample_sampler dpm_2")
    sp = plan["samples"]
    assert sp["enabled"] and [r["prompt"] for r in sp["resolved"]] == ["a red circle", "a blue square"]
    assert sp["resolved"][1] == {"prompt": "a blue square", "width": 80, "height": 64, "sample_steps": 1,
                                 "guidance_scale": 3.5, "cfg_scale": 2.0, "negative_prompt": "blurry", "seed": 6,
                                 "image_seq_len": 20, "mu": flux_sample_mu(20)}
    assert sp["resolved"][0]["negative_prompt"] is None
    said = [(u["option"], u["why"], u["refused"]) for u in plan["unsupported"]]
    # sampler names are not read for FLUX: said (never refused, e.g. for a scheduler package), not silent
    assert any(o == "sample_sampler" and "not read for FLUX.1" in w and not r for o, w, r in said), said
    assert any(o == "sample_prompts" and "prompt 1: --ss k_lms" in w and not r for o, w, r in said), said
    assert not any(r for _, _, r in said)


def test_plan_shows_flux_validation_draws(tmp_path) -> None:
    plan = _plan(tmp_path, "--validation_split 0.5 --validation_seed 3 --validate_every_n_steps 2")
    v = plan["validation"]
    assert v["enabled"] and v["timesteps"] == [200, 400, 600, 800] and v["fixed_timesteps"] is False
    assert any("flux_train_network.py ignores the fixed validation timesteps" in n for n in plan["notes"])
    res = CliRunner().invoke(cli, ["plan", str(tmp_path / "train.sh"), "--train-data", str(tmp_path / "data")])
    assert "4 runs each with a timestep_sampling draw" in res.output
