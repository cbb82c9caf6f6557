"""make_plan: step arithmetic, warmup, parameter groups, block weights, engine options (no torch)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from lora_compat.config.model import CanonicalConfig, Dataset, Setting, Subset
from lora_compat.plan import (
    block_index,
    block_lr_weights,
    make_plan,
    network_kind,
    parse_network_args,
    plan_steps,
)

from shared_data import CORPUS, requires_corpus


def _cfg(**opts) -> CanonicalConfig:
    cfg = CanonicalConfig(dialect="native", source="test")
    for k, v in opts.items():
        cfg.set(k, v)
    return cfg


def _images(folder: Path, n: int) -> str:
    folder.mkdir(parents=True)
    for i in range(n):
        (folder / f"{i}.png").write_bytes(b"")
    (folder / "0.txt").write_text("caption")  # captions are not images
    return str(folder)


def _subset(image_dir: str, repeats: int, is_reg: bool = False) -> Subset:
    params = {"image_dir": Setting(image_dir), "num_repeats": Setting(repeats)}
    if is_reg:
        params["is_reg"] = Setting(True)
    return Subset(params)


def test_epochs_to_steps_with_grad_accum_and_ratio_warmup(tmp_path: Path) -> None:
    cfg = _cfg(max_train_epochs=3, train_batch_size=2, gradient_accumulation_steps=2, lr_warmup_steps=0.1)
    cfg.datasets = [Dataset(subsets=[_subset(_images(tmp_path / "a", 5), 10), _subset(_images(tmp_path / "b", 3), 2)])]
    s = plan_steps(cfg)
    assert s.steps_per_epoch == math.ceil((5 * 10 + 3 * 2) / 2) == 28
    assert s.optimizer_steps_per_epoch == 14
    assert s.max_train_steps == 3 * 14
    assert s.warmup_steps == int(0.1 * 42) == 4
    assert s.effective_batch_size == 4
    assert s.epochs == 3


def test_regularization_samples_are_balanced_and_int_warmup_is_steps(tmp_path: Path) -> None:
    cfg = _cfg(max_train_steps=100, lr_warmup_steps=7)
    cfg.datasets = [Dataset(subsets=[_subset(_images(tmp_path / "t", 4), 5),
                                     _subset(_images(tmp_path / "r", 50), 1, is_reg=True)])]
    s = plan_steps(cfg)
    assert s.steps_per_epoch == 40  # 20 training samples + 20 balanced regularization samples, batch 1
    assert s.max_train_steps == 100 and s.epochs == math.ceil(100 / 40)
    assert s.warmup_steps == 7


def test_image_counts_argument_and_unknown_counts() -> None:
    cfg = _cfg(max_train_epochs=2)
    cfg.datasets = [Dataset(subsets=[_subset("/nonexistent/10_x", 3)])]
    assert plan_steps(cfg).max_train_steps is None
    assert plan_steps(cfg, {"/nonexistent/10_x": 8}).max_train_steps == 2 * 24


def test_default_length_is_1600_steps_and_float_one_is_full_warmup() -> None:
    s = plan_steps(_cfg(lr_warmup_steps=1.0))
    assert s.max_train_steps == 1600 and s.warmup_steps == 1600


GUI = {
    "LoRA_type": "Standard", "network_dim": 8, "network_alpha": 4, "epoch": 2, "max_train_steps": 0,
    "train_batch_size": 2, "gradient_accumulation_steps": 1, "lr_warmup": 10, "learning_rate": 0.0001,
    "lr_scheduler": "cosine", "train_data_dir": "/nonexistent/img", "reg_data_dir": "",
    "max_resolution": "512,512", "save_as_bool": False, "optimizer": "AdamW", "text_encoder_lr": 0.0001,
    "unet_lr": 0.0001, "save_model_as": "safetensors",
}


def test_kohya_gui_epoch_and_percent_warmup_use_image_counts(tmp_path: Path) -> None:
    from lora_compat.config.load import load_config

    path = tmp_path / "gui.json"
    path.write_text(json.dumps(GUI))
    counts = {"10_sks dog": 5, "notafolder": 99}
    cfg = load_config(str(path), image_counts=counts)   # the reader resolves the GUI's own formula (plan --images)
    plan = make_plan(cfg, image_counts=counts)
    # GUI formula: ceil(5 images x 10 repeats / batch 2 / grad_acc 1 x epoch 2 x reg 1) = 50
    assert plan.steps.max_train_steps == 50
    assert plan.steps.warmup_steps == round(10 * 50 / 100)


def test_kohya_gui_epoch_without_image_counts_is_unknown_not_1600(tmp_path: Path) -> None:
    """The GUI never ran sd-scripts' default length for an 'epoch' preset: without counts the plan says unknown."""
    from lora_compat.config.load import load_config

    path = tmp_path / "gui.json"
    path.write_text(json.dumps(GUI))
    cfg = load_config(str(path))
    assert cfg.get("max_train_epochs") == 2       # the GUI's epoch, carried as sd-scripts' own epoch count
    steps = make_plan(cfg).steps
    assert steps.max_train_steps is None and steps.warmup_steps is None and steps.epochs == 2
    assert any("images are counted" in line for line in steps.explanation)


def test_param_groups_follow_sd_scripts_order_and_drop_zero_lr() -> None:
    plan = make_plan(_cfg(learning_rate=1e-4, unet_lr=0.0, text_encoder_lr=[5e-5, 1e-3]))
    assert [(g.part, g.lr) for g in plan.param_groups] == [("text_encoder", 5e-5)]
    assert {a.part for a in plan.adapters} == {"unet", "text_encoder"}  # modules exist, saved with lora_up 0

    plan = make_plan(_cfg(learning_rate=1e-4, network_args=["loraplus_lr_ratio=4"], sdxl=True))
    assert [(g.part, g.lr, g.lora_plus) for g in plan.param_groups] == [
        ("text_encoder", 1e-4, False), ("text_encoder", 4e-4, True), ("unet", 1e-4, False), ("unet", 4e-4, True)]
    assert {a.part for a in plan.adapters} == {"unet", "text_encoder", "text_encoder_2"}


def test_train_part_flags_remove_adapters() -> None:
    assert [a.part for a in make_plan(_cfg(network_train_unet_only=True)).adapters] == ["unet"]
    assert [a.part for a in make_plan(_cfg(network_train_text_encoder_only=True)).adapters] == ["text_encoder"]


def test_block_lr_weight_zero_removes_modules_and_splits_groups() -> None:
    down = ",".join(["1"] * 6 + ["0"] * 6)  # down blocks 7..12 (down_blocks_2 attentions) weight 0
    plan = make_plan(_cfg(learning_rate=1e-4, network_dim=4, network_args=[f"down_lr_weight={down}"]))
    unet = plan.adapter("unet")
    assert unet is not None
    assert not any(p.startswith("down_blocks.2.") for p in unet.peft_kwargs["target_modules"])
    assert any(p.startswith("down_blocks.1.") for p in unet.peft_kwargs["target_modules"])
    blocks = [g.block for g in plan.param_groups if g.part == "unet"]
    assert blocks == sorted(blocks) and 7 not in blocks and 1 in blocks


def test_block_dims_give_rank_patterns() -> None:
    dims = [4] * 25
    dims[12] = 16  # mid block
    plan = make_plan(_cfg(network_dim=4, network_alpha=2, network_args=["block_dims=" + ",".join(map(str, dims))]))
    kw = plan.adapter("unet").peft_kwargs
    assert kw["r"] == 4
    assert kw["rank_pattern"] and all(k.startswith("mid_block.") and v == 16 for k, v in kw["rank_pattern"].items())


def test_block_index_map_matches_reference() -> None:
    assert block_index("lora_unet_down_blocks_0_attentions_1_proj_in", False) == 2
    assert block_index("lora_unet_down_blocks_1_downsamplers_0_conv", False) == 6
    assert block_index("lora_unet_mid_block_attentions_0_proj_in", False) == 12
    assert block_index("lora_unet_up_blocks_0_upsamplers_0_conv", False) == 15
    assert block_index("lora_unet_up_blocks_3_attentions_2_proj_out", False) == 24
    assert block_index("lora_unet_input_blocks_4_1_proj_in", True) == 5
    assert block_index("lora_unet_middle_block_1_proj_in", True) == 11
    assert block_index("lora_unet_output_blocks_5_1_proj_in", True) == 18


def test_block_lr_weight_presets_and_single_number() -> None:
    sine = block_lr_weights({"down_lr_weight": "sine"}, False)
    assert sine is not None and len(sine) == 25
    assert sine[0] == pytest.approx(0.0) and sine[11] == pytest.approx(1.0) and sine[12:] == [1.0] * 13
    assert block_lr_weights({"up_lr_weight": "0.5"}, False) is None  # unknown preset: treated as not given
    sdxl = block_lr_weights({"mid_lr_weight": "0.5"}, True)
    assert sdxl is not None and len(sdxl) == 23 and sdxl[10:13] == [0.5, 1.0, 1.0]


def test_network_kinds_and_unsupported() -> None:
    assert network_kind("networks.lora", {}) == "lora"
    assert network_kind("networks.lora", {"conv_dim": "4"}) == "locon"
    assert network_kind("lycoris.kohya", {"algo": "loha"}) == "loha"
    assert network_kind("lycoris.kohya", {"algo": "ia3"}) is None
    plan = make_plan(_cfg(network_module="networks.dylora"))
    assert [u.option for u in plan.unsupported] == ["network_module"]
    assert parse_network_args(["a=1", "b=x=y", "flag"]) == {"a": "1", "b": "x=y", "flag": ""}


def test_engine_options_and_adafactor_relative_step() -> None:
    plan = make_plan(_cfg(network_dropout=0.1, network_args=["rank_dropout=0.2", "module_dropout=0.3"],
                          scale_weight_norms=1.0, optimizer_type="Adafactor"))
    assert plan.engine_options["network_dropout"]["p"] == 0.1
    assert plan.engine_options["rank_dropout"]["p"] == 0.2
    assert plan.engine_options["module_dropout"]["p"] == 0.3
    assert plan.engine_options["scale_weight_norms"]["max_norm"] == 1.0
    assert "learning_rate" in [u.option for u in plan.unsupported]
    assert plan.adapter("unet").peft_kwargs["lora_dropout"] == 0.0  # kohya dropout is not PEFT's


def test_plan_json_is_serializable_and_has_peft_names() -> None:
    data = json.loads(json.dumps(make_plan(_cfg(network_dim=8, network_alpha=4, sdxl=True)).to_json()))
    unet = next(a for a in data["adapters"] if a["part"] == "unet")
    assert unet["peft_kwargs"]["r"] == 8 and unet["peft_kwargs"]["lora_alpha"] == 4
    assert unet["kohya_prefix"] == "lora_unet" and unet["peft_config_class"] == "LoraConfig"
    assert data["arch"] == "sdxl"


def test_plan_and_migrate_never_import_torch() -> None:
    code = ("import sys; from lora_compat.config.model import CanonicalConfig; "
            "import lora_compat.cli.plan_cmd, lora_compat.cli.migrate_cmd, lora_compat.migrate.run; "
            "from lora_compat.plan import make_plan; c = CanonicalConfig(dialect='native', source='x'); "
            "c.set('network_args', ['conv_dim=4']); make_plan(c); "
            "bad = [m for m in ('torch', 'diffusers', 'peft', 'transformers', 'accelerate', 'safetensors') "
            "if m in sys.modules]; assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_every_corpus_config_plans() -> None:
    from lora_compat.arch.families import is_supported
    from lora_compat.config.load import load_config
    from lora_compat.errors import UnsupportedFamilyError, UserError

    from shared_data import corpus_files

    files = corpus_files()
    if not files:
        pytest.skip("../shared/corpus not found beside this clone")
    planned = 0
    for path in files:
        try:
            cfg = load_config(str(path))
        except UserError:
            continue
        if cfg.invalid:
            continue
        if cfg.family and not is_supported(cfg.family, "plan"):
            with pytest.raises(UnsupportedFamilyError):  # never an SD plan for a FLUX.1/SD3 preset
                make_plan(cfg)
            continue
        plan = make_plan(cfg)
        json.dumps(plan.to_json())
        assert plan.adapters or plan.unsupported, path.name
        for a in plan.adapters:
            assert a.peft_kwargs["target_modules"], (path.name, a.part)
        planned += 1
    assert planned >= 100


def test_derrian_ratio_warmup_uses_its_own_estimate(tmp_path: Path) -> None:
    from lora_compat.config.load import load_config

    argstore = {"base_model": "/m.safetensors", "img_folder": "/nonexistent/img", "output_folder": "/out",
                "net_dim": 32, "alpha": 16, "optimizer_type": "AdamW", "scheduler": "cosine",
                "warmup_lr_ratio": 0.1, "max_steps": None, "batch_size": 2, "num_epochs": 3,
                "learning_rate": 0.0001, "list_of_json_to_run": None}
    path = tmp_path / "a2.json"
    path.write_text(json.dumps(argstore))
    cfg = load_config(str(path))
    if not any(n.code == "derrian-warmup-unresolved" for n in cfg.notes):
        pytest.skip("derrian reader does not record the unresolved warmup")
    plan = make_plan(cfg, image_counts={"5_cat": 4})
    # Derrian's estimate: int(20 images x repeats / batch 2 x 3 epochs) = 30 steps; warmup int(30 x 0.1) = 3
    assert plan.steps.warmup_steps == 3
    assert plan.steps.max_train_steps == 3 * 10  # sd-scripts: max_train_epochs 3 x ceil(20 samples / batch 2)


@pytest.mark.parametrize("args", [["down_lr_weight=abc,1"], ["mid_lr_weight=sine"], ["block_dims=1,2"],
                                  ["conv_dim=x"], ["up_lr_weight=linear+z"], ["rank_dropout=lots"]])
def test_network_args_sd_scripts_rejects_are_unsupported_not_crashes(args: list[str]) -> None:
    plan = make_plan(_cfg(network_args=args))
    assert [u.option for u in plan.unsupported] == ["network_args"]
    assert plan.adapter("unet").peft_kwargs["target_modules"]


def test_make_plan_never_raises_on_odd_values(tmp_path: Path) -> None:
    """The spine refuses ill-typed configs, but the plan must not crash on a value it was handed anyway."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    names = ["network_dim", "network_alpha", "network_module", "network_args", "learning_rate", "unet_lr",
             "text_encoder_lr", "max_train_steps", "max_train_epochs", "train_batch_size",
             "gradient_accumulation_steps", "lr_warmup_steps", "network_train_unet_only", "sdxl", "v2",
             "optimizer_type", "optimizer_args", "network_dropout", "scale_weight_norms", "peft.target_modules",
             "peft.rank_pattern", "peft.init_lora_weights", "dataset_repeats"]
    values = st.one_of(st.none(), st.booleans(), st.integers(-2, 64), st.floats(-1, 2), st.text(max_size=6),
                       st.lists(st.sampled_from(["conv_dim=4", "algo=loha", "x", "down_lr_weight=sine", "3"]),
                                max_size=3),
                       st.dictionaries(st.sampled_from(["mid_block.attentions.0.proj_in", "a"]),
                                       st.integers(1, 8), max_size=2))

    @settings(max_examples=150, deadline=None)
    @given(st.dictionaries(st.sampled_from(names), values, max_size=8))
    def check(opts):
        cfg = _cfg(**{k.replace(".", "__"): v for k, v in opts.items()})
        for k in list(cfg.options):  # _cfg keyword names cannot hold dots
            if "__" in k:
                cfg.options[k.replace("__", ".")] = cfg.options.pop(k)
        plan = make_plan(cfg)
        json.dumps(plan.to_json())

    check()


def test_warmup_with_constant_scheduler_is_unsupported() -> None:
    plan = make_plan(_cfg(lr_scheduler="constant", lr_warmup_steps=10))
    assert [u.option for u in plan.unsupported] == ["lr_warmup_steps"]
    assert not make_plan(_cfg(lr_scheduler="constant_with_warmup", lr_warmup_steps=10)).unsupported
    assert not make_plan(_cfg(lr_scheduler="constant", lr_warmup_steps=0)).unsupported


@requires_corpus
def test_derrian_a1_reg_doubling_is_the_same_at_load_and_at_plan_time(tmp_path: Path) -> None:
    """An early A1 ArgStore doubled its epochs-to-steps estimate when a regularization folder had images. Whether
    the folders exist when the file is read (the reader computes it) or only when the plan is made (plan/steps.py),
    the steps and the warmup are the same."""
    from lora_compat.config.load import load_config

    src = CORPUS / "easy_training_scripts/argstore/argstore_defaults__2023-01-30_4b70e9cd_lora_train_popup.json"
    store = json.loads(src.read_text(encoding="utf-8"))
    img, reg = tmp_path / "img", tmp_path / "reg"
    store.update(img_folder=str(img), reg_img_folder=str(reg), num_epochs=3, batch_size=2, max_steps=None,
                 warmup_lr_ratio=0.1, base_model="/m.safetensors", output_folder=str(tmp_path / "out"))
    path = tmp_path / "a1.json"
    path.write_text(json.dumps(store))

    late = load_config(str(path))                  # folders absent: the reader cannot count
    note = next(n for n in late.notes if n.code == "derrian-a1-epochs-to-steps")
    assert note.data["reg_double"] is True and note.data["max_train_steps"] is None
    for folder, name, n in ((img, "5_cat", 4), (reg, "1_person", 3)):
        (folder / name).mkdir(parents=True)
        for i in range(n):
            (folder / name / f"{i}.png").write_bytes(b"")
    early = load_config(str(path))                 # folders present: the reader counts
    assert early.get("max_train_steps") == int(20 / 2 * 3) * 2 == 60
    assert early.get("lr_warmup_steps") == 6
    plan = make_plan(late)
    assert (plan.steps.max_train_steps, plan.steps.warmup_steps) == (60, 6)
    assert any("x 2 (regularization images)" in line for line in plan.steps.explanation)
    (reg / "1_person").rename(tmp_path / "moved")  # the reg folder is empty now: no doubling
    assert make_plan(late).steps.max_train_steps == 30
