"""Sampling, validation, memory options and the LR picture in the plan (plan/samples.py, plan/lr_curve.py)."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import pytest
from click.testing import CliRunner

from lora_compat.cli import cli
from lora_compat.config.model import CanonicalConfig
from lora_compat.errors import UserError
from lora_compat.plan import make_plan
from lora_compat.plan.lr_curve import lr_curves
from lora_compat.semantics import lr_schedule


def _cfg(**opts) -> CanonicalConfig:
    cfg = CanonicalConfig(dialect="native", source="t.toml")
    cfg.set("pretrained_model_name_or_path", "tiny:sd1")
    for k, v in opts.items():
        cfg.set(k, v)
    return cfg


def test_sample_plan_reads_the_prompt_file(tmp_path: Path) -> None:
    prompts = tmp_path / "p.txt"
    prompts.write_text("a cat --w 64 --h 72 --d 5 --s 3\n(dog:1.2) --n blurry --ss euler_a\n", encoding="utf-8")
    plan = make_plan(_cfg(sample_prompts=str(prompts), sample_every_n_steps=2, sample_at_first=True,
                          sample_sampler="k_euler", output_dir=str(tmp_path / "out")))
    sp = plan.samples
    assert sp.enabled and sp.every_n_steps == 2 and sp.at_first and sp.sampler == "k_euler"
    assert sp.output_dir == str(tmp_path / "out" / "sample")
    assert next((p.prompt, p.width, p.height, p.seed, p.sample_steps) for p in sp.prompts) == ("a cat", 64, 72, 5, 3)
    assert sp.prompts[1].negative_prompt == "blurry" and sp.prompts[1].sample_sampler == "euler_a"
    data = json.loads(json.dumps(plan.to_json()))
    assert data["samples"]["prompts"][0] == {"index": 0, "prompt": "a cat", "width": 64, "height": 72, "seed": 5,
                                             "sample_steps": 3}
    assert data["samples"]["enabled"] and not plan.refusals


def test_sample_plan_problems(tmp_path: Path) -> None:
    plan = make_plan(_cfg(sample_prompts=str(tmp_path / "missing.txt"), sample_every_n_epochs=1))
    assert [u.option for u in plan.refusals] == ["sample_prompts"] and "does not exist" in plan.refusals[0].why
    # intervals of 0 or less switch sampling off, as sd-scripts
    prompts = tmp_path / "p.txt"
    prompts.write_text("x --ss nosuch --l 1.2.3\n", encoding="utf-8")
    plan = make_plan(_cfg(sample_prompts=str(prompts), sample_every_n_steps=0))
    assert not plan.samples.enabled and any("disables sampling" in n for n in plan.notes)
    whys = [u.why for u in plan.unsupported if u.option == "sample_prompts"]
    assert any("'nosuch' is not one sd-scripts knows; it samples with ddim" in w for w in whys)
    assert any("'--l 1.2.3' is not a number" in w for w in whys)
    # sampling asked for without a prompt file: said, not refused
    plan = make_plan(_cfg(sample_every_n_steps=5))
    assert not plan.refusals and any("TypeError" in u.why for u in plan.unsupported)
    if importlib.util.find_spec("scipy") is None:
        prompts.write_text("x --ss k_lms\n", encoding="utf-8")
        plan = make_plan(_cfg(sample_prompts=str(prompts), sample_every_n_steps=1))
        assert [u.option for u in plan.refusals] == ["sample_sampler"] and "pip install scipy" in plan.refusals[0].why


def test_prompt_file_next_to_the_config(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "cfg").mkdir()
    (tmp_path / "cfg" / "p.json").write_text('["a dog --d 3"]', encoding="utf-8")
    cfg = _cfg(sample_prompts="p.json", sample_every_n_steps=1)
    cfg.source = str(tmp_path / "cfg" / "t.toml")
    monkeypatch.chdir(tmp_path)
    plan = make_plan(cfg)
    assert plan.samples.prompt_file == str(tmp_path / "cfg" / "p.json") and plan.samples.prompts[0].seed == 3


def test_validation_plan(tmp_path: Path) -> None:
    (tmp_path / "img" / "1_x").mkdir(parents=True)
    plan = make_plan(_cfg(train_data_dir=str(tmp_path / "img"), validation_split=0.25, validation_seed=7,
                          validate_every_n_steps=10, max_validation_steps=3, min_timestep=100, max_timestep=900))
    v = plan.validation
    assert v.enabled and v.splits == [0.25] and v.seed == 7 and v.every_n_steps == 10 and v.max_steps == 3
    assert v.timesteps == [260, 420, 580, 740]
    assert plan.to_json()["validation"]["enabled"]
    plan = make_plan(_cfg(train_data_dir=str(tmp_path / "img"), validation_split=0.1, validate_every_n_steps=0))
    assert "validate_every_n_steps" in [u.option for u in plan.refusals]
    plan = make_plan(_cfg(validate_every_n_epochs=2))
    assert not plan.validation.enabled and any("nothing to validate" in n for n in plan.notes)


@pytest.mark.parametrize(("opts", "option", "message"), [
    ({"full_fp16": True, "mixed_precision": "bf16"}, "full_fp16", 'requires mixed_precision = "fp16"'),
    ({"fp8_base": True}, "fp8_base", "requires mixed_precision fp16 or bf16"),
    ({"fp8_base_unet": True}, "fp8_base_unet", "requires mixed_precision fp16 or bf16"),
    ({"log_with": "tensorboard"}, "log_with", "needs logging_dir"),
])
def test_memory_and_logging_refusals(opts, option, message) -> None:
    plan = make_plan(_cfg(**opts))
    refused = [u for u in plan.refusals if not _missing_package(u)]
    assert [u.option for u in refused] == [option] and message in refused[0].why


def _missing_package(u) -> bool:
    """The refusal plan adds where the logging package is not installed (the light install has no tensorboard)."""
    return u.option == "log_with" and importlib.util.find_spec("tensorboard") is None and "not installed" in u.why


def test_memory_options_in_the_plan() -> None:
    plan = make_plan(_cfg(sdxl=True, pretrained_model_name_or_path="tiny:sdxl", mixed_precision="bf16",
                          fp8_base_unet=True, cache_text_encoder_outputs_to_disk=True, network_train_unet_only=True,
                          highvram=True, log_with="tensorboard", logging_dir="logs", log_prefix="run-"))
    assert plan.precision.fp8_base and plan.precision.fp8_base_unet
    assert [u for u in plan.refusals if not _missing_package(u)] == []
    if importlib.util.find_spec("tensorboard") is None:   # named, not a traceback at train time
        assert [u.option for u in plan.refusals] == ["log_with"] and "pip install tensorboard" in plan.refusals[0].why
    assert plan.model.cache_text_encoder_outputs and plan.model.cache_text_encoder_outputs_to_disk
    assert plan.model.highvram and plan.outputs.log_with == "tensorboard" and plan.outputs.log_prefix == "run-"
    sd1 = make_plan(_cfg(cache_text_encoder_outputs_to_disk=True))
    assert not sd1.model.cache_text_encoder_outputs and "cache_text_encoder_outputs_to_disk" in {
        u.option for u in sd1.ignored}


def test_lr_curves_follow_the_engine_schedule() -> None:
    plan = make_plan(_cfg(max_train_steps=60, lr_scheduler="cosine_with_restarts", lr_scheduler_num_cycles=3,
                          lr_warmup_steps=6, learning_rate=1e-4, text_encoder_lr=5e-5))
    curves = lr_curves(plan)
    assert [label for label, _ in curves.groups] == ["textencoder", "unet"]
    want = lr_schedule(1e-4, 60, "cosine_with_restarts", lr_warmup_steps=6, lr_scheduler_num_cycles=3)
    assert curves.groups[1][1] == pytest.approx(want) and curves.warmup_steps == 6
    assert curves.groups[0][1][10] == pytest.approx(want[10] / 2)
    with pytest.raises(UserError, match="relative_step"):
        lr_curves(make_plan(_cfg(max_train_steps=5, optimizer_type="Adafactor")))
    assert math.isclose(lr_curves(make_plan(_cfg(max_train_steps=5, optimizer_type="Prodigy", learning_rate=1.0)))
                        .groups[0][1][0], 1.0)


def test_plan_plot_writes_a_png(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    from tests.test_plots import png_facts

    conf = tmp_path / "c.toml"
    conf.write_text('pretrained_model_name_or_path = "tiny:sd1"\nmax_train_steps = 80\nlr_scheduler = "cosine"\n'
                    'lr_warmup_steps = 8\nlearning_rate = 1e-4\n', encoding="utf-8")
    out = tmp_path / "lr.png"
    res = CliRunner().invoke(cli, ["plan", str(conf), "--plot", str(out), "--format", "json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["scheduler"]["name"] == "cosine"
    size, colours = png_facts(out)
    assert size == (1000, 480) and colours > 50
    res = CliRunner().invoke(cli, ["plan", str(conf), "--plot", str(tmp_path / "lr.svg")])
    assert isinstance(res.exception, UserError) and "ending in .png" in str(res.exception)


def test_kohya_gui_inline_prompt_text_is_the_prompt_file(tmp_path) -> None:
    """The kohya_ss GUI holds the prompt text and writes sample/prompt.txt when training starts: the plan reads the
    text instead of refusing a file that does not exist yet."""
    import json

    from lora_compat.config.load import load_config
    from lora_compat.plan import make_plan

    gui = {"LoRA_type": "Standard", "max_resolution": "64,64", "output_dir": str(tmp_path / "out"),
           "sample_prompts": "a cat --w 64 --h 64\n# not a prompt\na dog", "sample_every_n_steps": 5}
    path = tmp_path / "gui.json"
    path.write_text(json.dumps(gui), encoding="utf-8")
    plan = make_plan(load_config(str(path)))
    assert [p.prompt for p in plan.samples.prompts] == ["a cat", "a dog"]
    assert not [u for u in plan.unsupported if u.option == "sample_prompts" and u.refused]
