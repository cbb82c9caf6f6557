"""Each cross-dialect pitfall of legacy-dialects.md §5 survives a migration the way the legacy tool ran it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from lora_compat.migrate.run import migrate_file
from lora_compat.tomlparse import tomllib

# A kohya_ss GUI LoRA preset of the K3 era (save_as_bool marker, no lr_warmup_steps key: percent -> steps).
K3 = {"LoRA_type": "Standard", "save_as_bool": False, "network_dim": 8, "network_alpha": 4,
      "learning_rate": 0.0001, "text_encoder_lr": 0.0001, "unet_lr": 0.0001, "optimizer": "AdamW",
      "lr_scheduler": "cosine", "train_batch_size": 1, "epoch": 1, "max_train_steps": 1000, "lr_warmup": 10,
      "max_resolution": "512,512", "caption_extension": ".txt", "log_with": ""}


def _migrate(tmp_path: Path, data: dict[str, Any] | str, to: str = "sd-scripts", name: str = "in.json"):
    src = tmp_path / name
    src.write_text(data if isinstance(data, str) else json.dumps(data), encoding="utf-8")
    out = tmp_path / ("out.json" if to == "kohya-gui" else "out.toml")
    report = migrate_file(str(src), to, str(out), force=True)
    text = out.read_text(encoding="utf-8")
    return (json.loads(text) if to == "kohya-gui" else tomllib.loads(text)), report


def _entry(report, option: str):
    return next(e for e in report.entries if e.option == option)


# 1. warmup units ---------------------------------------------------------------------------------------------

def test_gui_percent_warmup_becomes_steps_before_v25(tmp_path: Path) -> None:
    out, report = _migrate(tmp_path, K3)
    assert out["lr_warmup_steps"] == 100 and isinstance(out["lr_warmup_steps"], int)
    assert "percent" in _entry(report, "lr_warmup_steps").detail


def test_gui_v25_percent_warmup_becomes_a_ratio(tmp_path: Path) -> None:
    out, _ = _migrate(tmp_path, {**K3, "lr_warmup_steps": 0})  # K5 marker
    assert out["lr_warmup_steps"] == 0.1 and isinstance(out["lr_warmup_steps"], float)
    native, _ = _migrate(tmp_path, {**K3, "lr_warmup_steps": 0}, to="native")
    assert native["scheduler"]["warmup_ratio"] == 0.1 and "warmup_steps" not in native["scheduler"]


def test_native_ratio_warmup_becomes_gui_percent(tmp_path: Path) -> None:
    native = 'format = "lora-compat/1"\n[scheduler]\nwarmup_ratio = 0.25\n'
    gui, _report = _migrate(tmp_path, native, to="kohya-gui", name="n.toml")
    assert gui["lr_warmup"] == 25 and gui["lr_warmup_steps"] == 0
    steps, _ = _migrate(tmp_path, 'format = "lora-compat/1"\n[scheduler]\nwarmup_steps = 30\n', to="kohya-gui",
                        name="s.toml")
    assert steps["lr_warmup_steps"] == 30 and steps["lr_warmup"] == 0


def test_derrian_ratio_warmup_is_a_fraction_not_a_percent(tmp_path: Path) -> None:
    argstore = {"base_model": "/m.safetensors", "img_folder": "/img", "output_folder": "/out", "net_dim": 32,
                "alpha": 16, "optimizer_type": "AdamW", "scheduler": "cosine", "warmup_lr_ratio": 0.05,
                "max_steps": 400, "batch_size": 1, "num_epochs": 1, "learning_rate": 0.0001,
                "list_of_json_to_run": None}
    out, _ = _migrate(tmp_path, argstore)
    assert out["lr_warmup_steps"] in (20, 0.05)  # int(400 x 0.05) steps, or the same fraction as a ratio
    assert "list_of_json_to_run" not in out  # 9. stray keys are not carried over


# 2. training length -------------------------------------------------------------------------------------------

def test_gui_epoch_becomes_the_gui_step_count_with_reg_factor(tmp_path: Path) -> None:
    img, reg = tmp_path / "img" / "10_sks", tmp_path / "reg" / "1_person"
    for folder, n in ((img, 3), (reg, 2)):
        folder.mkdir(parents=True)
        for i in range(n):
            (folder / f"{i}.png").write_bytes(b"")
    data = {**K3, "epoch": 2, "max_train_steps": 0, "train_data_dir": str(img.parent),
            "reg_data_dir": str(reg.parent), "lr_warmup": 0}
    out, _report = _migrate(tmp_path, data)
    assert out["max_train_steps"] == 3 * 10 * 2 * 2  # ceil(images x repeats / 1 / 1 x epoch 2 x reg 2)
    assert "max_train_epochs" not in out
    assert out["train_data_dir"] == str(img.parent)  # sd-scripts derives the subsets from the folders again


def test_gui_max_train_epochs_is_passed_as_epochs(tmp_path: Path) -> None:
    out, _ = _migrate(tmp_path, {**K3, "max_train_epochs": 5})
    assert out["max_train_epochs"] == 5


# 3. zero / empty semantics ------------------------------------------------------------------------------------

def test_gui_zero_is_dropped_and_native_zero_survives_into_the_gui(tmp_path: Path) -> None:
    out, report = _migrate(tmp_path, {**K3, "max_grad_norm": 0})
    assert "max_grad_norm" not in out  # the GUI never passed it: sd-scripts clipped at 1.0
    assert "kohya-gui-zero-dropped" in {n["code"] for n in report.notes}
    gui, _ = _migrate(tmp_path, 'format = "lora-compat/1"\n[optimizer]\nmax_grad_norm = 0.0\n', to="kohya-gui",
                      name="z.toml")
    assert "--max_grad_norm=0.0" in gui["additional_parameters"].split()


# 4. caption extension -----------------------------------------------------------------------------------------

def test_empty_gui_caption_extension_means_dot_caption(tmp_path: Path) -> None:
    out, _ = _migrate(tmp_path, {**K3, "caption_extension": ""})
    assert out.get("caption_extension", ".caption") == ".caption"
    native, _ = _migrate(tmp_path, 'format = "lora-compat/1"\n[model]\narch = "sd1"\n', to="kohya-gui",
                         name="c.toml")
    assert native["caption_extension"] == ".caption"  # sd-scripts' default, not the GUI's ".txt"


# 5. train-part selection --------------------------------------------------------------------------------------

def test_gui_zero_lr_selects_the_trained_part_and_back(tmp_path: Path) -> None:
    out, _ = _migrate(tmp_path, {**K3, "text_encoder_lr": 0})
    assert out["network_train_unet_only"] is True
    gui, _ = _migrate(tmp_path, 'format = "lora-compat/1"\n[network]\nnetwork_train_text_encoder_only = true\n',
                      to="kohya-gui", name="t.toml")
    assert gui["unet_lr"] == 0 and gui["text_encoder_lr"] != 0


# 6. algorithms ------------------------------------------------------------------------------------------------

def test_lora_types_map_to_modules_and_kinds(tmp_path: Path) -> None:
    out, _ = _migrate(tmp_path, {**K3, "LoRA_type": "LyCORIS/LoHa", "conv_dim": 4, "conv_alpha": 2})
    assert out["network_module"] == "lycoris.kohya" and "algo=loha" in out["network_args"]
    native, _ = _migrate(tmp_path, {**K3, "LoRA_type": "LyCORIS/LoHa", "conv_dim": 4, "conv_alpha": 2},
                         to="native")
    assert native["network"]["kind"] == "loha"
    locon, _ = _migrate(tmp_path, {**K3, "LoRA_type": "Kohya LoCon", "conv_dim": 4, "conv_alpha": 1},
                        to="native")
    assert locon["network"]["kind"] == "locon" and locon["network"]["conv_r"] == 4
    gui, _ = _migrate(tmp_path, {**K3, "LoRA_type": "LoCon", "conv_dim": 4, "conv_alpha": 1}, to="kohya-gui")
    assert gui["LoRA_type"] == "LyCORIS/LoCon"  # the GUI's loader rewrites the 2023 "LoCon" value


# 7. strings for numbers ---------------------------------------------------------------------------------------

def test_string_numbers_become_numbers_and_empty_strings_unset(tmp_path: Path) -> None:
    k0 = {"pretrained_model_name_or_path": "/m.ckpt", "train_data_dir": "/img", "use_8bit_adam": True,
          "learning_rate": "0.0001", "lr_scheduler": "constant", "lr_warmup": "0", "train_batch_size": 1,
          "epoch": "1", "max_train_epochs": "", "seed": "1234", "max_resolution": "512,512",
          "save_every_n_epochs": "1", "mixed_precision": "fp16", "save_precision": "fp16",
          "cache_latent": True, "caption_extention": ".txt"}
    out, _ = _migrate(tmp_path, k0)
    assert out["learning_rate"] == 0.0001 and isinstance(out["learning_rate"], float)
    # "" max_train_epochs is not passed; the GUI's epoch "1" is carried as sd-scripts' epoch count (no folders here)
    assert out["seed"] == 1234 and out["max_train_epochs"] == 1
    # K0 passed the --use_8bit_adam flag; the current GUI maps it to optimizer AdamW8bit: same optimizer
    assert out.get("use_8bit_adam") is True or out.get("optimizer_type") == "AdamW8bit"


# 8. quoting ---------------------------------------------------------------------------------------------------

def test_quoted_gui_args_are_split_like_the_gui(tmp_path: Path) -> None:
    out, _ = _migrate(tmp_path, {**K3, "optimizer_args": '"decouple=True" "weight_decay=0.01"'})
    assert out["optimizer_args"] == ["decouple=True", "weight_decay=0.01"]
    native = 'format = "lora-compat/1"\n[optimizer.args]\nbetas = "(0.9, 0.99)"\n'
    gui, report = _migrate(tmp_path, native, to="kohya-gui", name="q.toml")
    assert gui["optimizer_args"] == "" and _entry(report, "optimizer_args").kind == "no-equivalent"


# 9. stray keys and 10. accelerate options ---------------------------------------------------------------------

def test_stray_gui_keys_and_accelerate_options_are_reported_not_written(tmp_path: Path) -> None:
    data = {**K3, "model_list": "custom", "stop_text_encoder_training_pct": 0, "num_cpu_threads_per_process": 2,
            "multi_gpu": False, "mixed_precision": "bf16", "block_lr": ""}
    out, report = _migrate(tmp_path, data)
    for key in ("save_as_bool", "model_list", "stop_text_encoder_training_pct", "num_cpu_threads_per_process",
                "multi_gpu", "block_lr"):
        assert key not in out
    assert out["mixed_precision"] == "bf16"  # both an accelerate and an sd-scripts option
    reported = {e.source_key for e in report.entries if e.kind == "dropped"}
    assert {"save_as_bool", "num_cpu_threads_per_process"} <= reported


def test_credentials_never_reach_any_target(tmp_path: Path) -> None:
    data = {**K3, "log_with": "wandb", "wandb_api_key": "0123456789abcdef0123", "huggingface_token": "hf_secret",
            "additional_parameters": "--huggingface_token=hf_other_secret --huggingface_repo_id me/x"}
    for to in ("native", "sd-scripts", "kohya-gui"):
        _, report = _migrate(tmp_path, data, to=to)
        text = (tmp_path / ("out.json" if to == "kohya-gui" else "out.toml")).read_text()
        shown = json.dumps(report.to_json())  # the report is an output too (stdout, CI logs)
        for secret in ("0123456789abcdef0123", "hf_secret", "hf_other_secret"):
            assert secret not in text and secret not in shown, (to, secret)


def test_dataset_config_is_inlined_in_native_and_prompt_files_are_not_copied(tmp_path: Path) -> None:
    ds = tmp_path / "ds.toml"
    ds.write_text('[general]\nresolution = 512\n[[datasets]]\n[[datasets.subsets]]\nimage_dir = "/img"\n'
                  'num_repeats = 3\n')
    secret = tmp_path / "secret.key"
    secret.write_text("do-not-copy")
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'network_module = "networks.lora"\ndataset_config = "{ds}"\nsample_prompts = "{secret}"\n')
    native, report = _migrate(tmp_path, cfg.read_text(), to="native", name="cfg.toml")
    assert "dataset_config" not in native.get("data", {})
    assert native["datasets"][0]["subsets"][0] == {"image_dir": "/img", "num_repeats": 3}
    gui, report = _migrate(tmp_path, cfg.read_text(), to="kohya-gui", name="cfg2.toml")
    assert gui["sample_prompts"] == "" and "do-not-copy" not in json.dumps(gui)
    assert _entry(report, "sample_prompts").kind == "no-equivalent"
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("a photo of sks dog --n blurry")
    gui, _ = _migrate(tmp_path, cfg.read_text().replace(str(secret), str(prompts)), to="kohya-gui", name="c3.toml")
    assert gui["sample_prompts"] == "a photo of sks dog --n blurry"


def test_a_length_the_gui_derived_from_absent_folders_keeps_its_meaning(tmp_path: Path) -> None:
    """GUI 'epoch' x image count: without the folders the GUI's step count cannot be computed, but sd-scripts'
    own max_train_epochs counts the same epochs (per bucket): carried, nothing lost, --strict accepts it
    (issue #10 item 6; before, the default 1600 steps would have applied or the length was reported lost)."""
    data = {**K3, "epoch": 20, "max_train_steps": 0, "train_data_dir": str(tmp_path / "absent"), "lr_warmup": 0}
    out, report = _migrate(tmp_path, data)
    assert "max_train_steps" not in out and out["max_train_epochs"] == 20
    entry = next(e for e in report.entries if e.source_key == "epoch")
    assert entry.kind == "derived" and "bucket" in entry.detail and not entry.loss
    src = tmp_path / "strict.json"
    src.write_text(json.dumps(data), encoding="utf-8")
    migrate_file(str(src), "native", str(tmp_path / "strict.toml"), strict=True)
    assert (tmp_path / "strict.toml").exists()


def test_native_to_native_reports_every_key_kept(tmp_path: Path) -> None:
    from shared_data import FIXTURES

    src = FIXTURES / "migrate" / "native_full.toml"
    report = migrate_file(str(src), "native", str(tmp_path / "same.toml"))
    assert {e.kind for e in report.entries} == {"kept"}
    assert all(e.source_key == e.target_key for e in report.entries)


# legacy-dialects.md §5, the rules not covered above ----------------------------------------------------------

U_TOML = """[[subsets]]
name = "s"
image_dir = "/img/10_cat"
num_repeats = 10
flip_aug = false

[general_args.args]
pretrained_model_name_or_path = "m.safetensors"
max_train_epochs = 2
seed = 0

[network_args.args]
network_dim = 16
network_alpha = 8.0

[network_args.args.network_args]
conv_dim = 4
algo = "lora"

[optimizer_args.args]
optimizer_type = "AdamW"
lr_scheduler = "cosine"
learning_rate = 0.0001
max_grad_norm = 0.0
"""


def test_derrian_alias_copies_the_kohya_percent_as_a_ratio(tmp_path: Path) -> None:
    """§5.1: Derrian's loader put kohya's lr_warmup 10 (percent) into warmup_lr_ratio unchanged: 10.0, x100."""
    from shared_data import FIXTURES

    data = json.loads((FIXTURES / "dialects" / "derrian" / "a2_kohya_alias.json").read_text())
    _, report = _migrate(tmp_path, data)
    assert "derrian-kohya-warmup-percent" in {n["code"] for n in report.notes}
    warm = [e for e in report.entries if e.source_key == "lr_warmup"]
    assert warm and "10.0" in (warm[0].detail or "") and "0.1 " not in (warm[0].detail or "")


def test_gui_default_1600_steps_overrides_epoch(tmp_path: Path) -> None:
    """§5.2: since 2024-04-19 the GUI's max_train_steps default 1600 wins over 'epoch'."""
    out, report = _migrate(tmp_path, {**K3, "lr_warmup_steps": 0, "epoch": 7, "max_train_steps": 1600})
    assert out["max_train_steps"] == 1600 and "max_train_epochs" not in out
    assert "kohya-gui-epoch-ignored" in {n["code"] for n in report.notes}


def test_derrian_toml_drops_falsy_values_and_algo_lora_is_locon(tmp_path: Path) -> None:
    """§5.3: the Derrian UI drops every falsy value (seed 0, max_grad_norm 0.0, flip_aug false) before
    sd-scripts sees them; §5.6: LyCORIS algo=lora with conv_dim is LoCon."""
    out, _ = _migrate(tmp_path, U_TOML, name="u.toml")
    for key in ("seed", "max_grad_norm", "flip_aug"):
        assert key not in out
    dataset = tomllib.loads((tmp_path / "out_dataset.toml").read_text())
    assert "flip_aug" not in dataset["datasets"][0]["subsets"][0]
    assert out["max_train_epochs"] == 2  # U passes true epochs (§5.2)
    native, _ = _migrate(tmp_path, U_TOML, to="native", name="u.toml")
    assert native["network"]["kind"] == "locon" and native["network"]["conv_r"] == 4
    gui, _ = _migrate(tmp_path, U_TOML, to="kohya-gui", name="u.toml")
    assert gui["LoRA_type"] == "LyCORIS/LoCon" and gui["conv_dim"] == 4


def test_derrian_a1_unet_only_wins_over_text_only(tmp_path: Path) -> None:
    """§5.5: A1 with both unet_only and text_only passed only --network_train_unet_only."""
    from shared_data import FIXTURES

    data = json.loads((FIXTURES / "dialects" / "derrian" / "a1_quirks.json").read_text())
    out, _ = _migrate(tmp_path, data)
    assert out.get("network_train_unet_only") is True and "network_train_text_encoder_only" not in out


def test_derrian_a1_epochs_turned_into_unknown_steps_is_a_loss(tmp_path: Path) -> None:
    """§5.2: A1 before 2023-02-04 converted epochs into steps; without the folders that length is lost."""
    a1 = {"base_model": "m.safetensors", "img_folder": str(tmp_path / "absent"), "output_folder": "/out",
          "net_dim": 8, "alpha": 4, "learning_rate": 1e-4, "batch_size": 1, "num_epochs": 3, "scheduler": "cosine",
          "list_of_json_to_run": None}
    out, report = _migrate(tmp_path, a1)
    assert "derrian-a1-epochs-to-steps" in {n["code"] for n in report.notes}  # this key set reads as early A1
    assert "max_train_epochs" not in out and "max_train_steps" not in out
    assert any(e.source_key == "num_epochs" and e.loss for e in report.entries)


def test_gui_prompt_text_travels_as_a_prompt_file(tmp_path: Path) -> None:
    """The GUI file holds the prompt text and writes it to <output_dir>/sample/prompt.txt only when it trains:
    a migrated config must not point at that never-written file; the text goes to <stem>_prompts.txt."""
    data = {**K3, "output_dir": str(tmp_path / "never"), "sample_prompts": "a sks dog --n blurry",
            "sample_every_n_steps": 100}
    for to in ("sd-scripts", "native"):
        out, report = _migrate(tmp_path, data, to=to)
        written_path = out["sample_prompts"] if to == "sd-scripts" else out["sampling"]["sample_prompts"]
        assert written_path == str((tmp_path / "out_prompts.txt").resolve())
        assert Path(written_path).read_text(encoding="utf-8") == "a sks dog --n blurry\n"
        assert str(tmp_path / "out_prompts.txt") in report.outputs
    gui, _ = _migrate(tmp_path, data, to="kohya-gui")
    assert gui["sample_prompts"] == "a sks dog --n blurry"
    # an existing prompt file is protected like any output
    src = tmp_path / "again.json"
    src.write_text(json.dumps(data), encoding="utf-8")
    from lora_compat.errors import UserError

    try:
        migrate_file(str(src), "native", str(tmp_path / "out.toml"))
    except UserError as err:
        assert "--force" in str(err)
    else:
        raise AssertionError("an existing output was overwritten without --force")


def test_kohya_gui_writer_never_passes_words_sd_scripts_refuses(tmp_path) -> None:
    """dynamo_backend "no" is accepted in a --config_file TOML but refused by argparse's choices: the GUI
    writer must report it lost instead of putting it into additional_parameters."""
    import json

    from lora_compat.config.load import load_config
    from lora_compat.migrate.run import render

    src = tmp_path / "cfg.toml"
    src.write_text('network_module = "networks.lora"\nnetwork_dim = 8\ndynamo_backend = "no"\n')
    cfg = load_config(str(src))
    files, report = render(cfg, "kohya-gui", str(tmp_path / "gui.json"))
    gui = json.loads(next(iter(files.values())))
    assert "dynamo_backend=no" not in gui.get("additional_parameters", "")
    lost = [e for e in report.losses if e.option == "dynamo_backend"]
    assert lost and "refuses" in lost[0].detail
