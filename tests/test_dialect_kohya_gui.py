"""kohya_ss GUI JSON reader: one test per conversion rule of legacy-dialects.md §2 (value AND provenance)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lora_compat.config.detect import detect_document
from lora_compat.config.dialects import kohya_gui
from lora_compat.config.loaders import load_document
from lora_compat.config.notes import NOTE_CODES

from shared_data import CORPUS, FIXTURES, requires_corpus

KOHYA = FIXTURES / "dialects" / "kohya"


def read(path: Path):
    doc = load_document(str(path))
    det = detect_document(doc)
    assert det.dialect == "kohya-gui", det.reasons
    return kohya_gui.read(doc, det)


def write(tmp_path: Path, data: dict, name: str = "cfg.json") -> Path:
    p = tmp_path / name
    p.write_text(json.dumps(data), encoding="utf-8")
    return p


@pytest.fixture(scope="module")
def k0():
    return read(KOHYA / "k0_strings.json")


@pytest.fixture(scope="module")
def k2():
    return read(KOHYA / "k2_sdxl_locon.json")


@pytest.fixture(scope="module")
def partial():
    return read(KOHYA / "k3_partial_preset.json")


def codes(cfg) -> list[str]:
    return [n.code for n in cfg.notes]


def test_classify_eras_and_tabs(k0, k2, partial):
    assert (k0.era, k0.tab) == ("K0", "lora")
    assert (k2.era, k2.tab) == ("K2", "lora")
    assert partial.era == "K3"
    assert kohya_gui.classify({"lr_warmup_steps": 0, "learning_rate_te": 1e-5})[:2] == ("K5", "dreambooth")
    assert kohya_gui.classify({"flux1_checkbox": False, "LoRA_type": "Flux1"})[:2] == ("K4", "lora")


def test_string_numbers_converted(k0):
    s = k0.options["learning_rate"]
    assert s.value == 0.0001 and s.prov.kind == "converted"
    assert s.prov.conversion == 'learning_rate "0.0001" -> learning_rate 0.0001'
    assert s.prov.origin.line is not None


def test_float_for_int(k0):
    s = k0.options["bucket_reso_steps"]
    assert s.value == 64 and isinstance(s.value, int) and s.prov.kind == "converted"
    assert k0.options["gradient_accumulation_steps"].value == 1


def test_empty_string_is_unset(k0):
    assert "seed" not in k0.options            # "" = random seed, not passed
    s = k0.options["max_train_epochs"]         # "" = not passed: the value comes from epoch (folders absent)
    assert s.prov.kind == "derived" and s.prov.origin.key == "epoch"


def test_invalid_value_recorded_not_raised(k0):
    inv = [i for i in k0.invalid if i.option == "keep_tokens"]
    assert inv and inv[0].value == "abc" and inv[0].origin.key == "keep_tokens"


def test_unknown_key_kept(k0):
    assert [u.key for u in k0.unknown_keys] == ["my_own_key"]


def test_typo_keys_of_k0(k0):
    s = k0.options.get("cache_latents", None)
    assert s is not None and s.value is True and s.prov.origin.key == "cache_latent"


def test_caption_extension_empty_means_caption(k0):
    assert "caption_extension" not in k0.options
    assert "kohya-gui-caption-extension-empty" in codes(k0)


def test_use_8bit_adam_k0_flag(k0):
    assert k0.options["use_8bit_adam"].value is True
    assert "optimizer_type" not in k0.options


def test_use_8bit_adam_mapped_when_k1(tmp_path):
    cfg = read(write(tmp_path, {"LoRA_type": "Standard", "use_8bit_adam": True, "max_resolution": "512,512"}))
    s = cfg.options["optimizer_type"]
    assert s.value == "AdamW8bit" and s.prov.kind == "converted" and "use_8bit_adam" in s.prov.conversion


def test_xformers_bool_and_string(k0, partial):
    assert k0.options["xformers"].value is True and "kohya-gui-xformers-bool" in codes(k0)
    assert partial.options["xformers"].value is True
    assert partial.options["xformers"].prov.conversion == 'xformers "xformers" -> xformers true'


def test_sdpa_string(tmp_path):
    cfg = read(write(tmp_path, {"LoRA_type": "Standard", "xformers": "sdpa", "max_resolution": "512,512"}))
    assert cfg.options["sdpa"].value is True and "xformers" not in cfg.options


def test_max_resolution_passed_as_string(k2):
    s = k2.options["resolution"]
    assert s.value == "1024,1024" and s.prov.origin.key == "max_resolution"


def test_invalid_resolution(tmp_path):
    cfg = read(write(tmp_path, {"LoRA_type": "Standard", "max_resolution": "big"}))
    assert [i.option for i in cfg.invalid] == ["resolution"]


def test_te_lr_zero_gives_unet_only(k0):
    s = k0.options["network_train_unet_only"]
    assert s.value is True and s.prov.kind == "derived" and "text_encoder_lr" in s.prov.conversion
    assert "text_encoder_lr" not in k0.options


def test_unet_lr_zero_gives_te_only(k2):
    assert k2.options["network_train_text_encoder_only"].value is True
    assert "unet_lr" not in k2.options


def test_all_lr_zero_noted(tmp_path):
    cfg = read(write(tmp_path, {"LoRA_type": "Standard", "learning_rate": 0, "text_encoder_lr": 0, "unet_lr": 0,
                                "max_resolution": "512,512"}))
    assert "kohya-gui-all-lr-zero" in codes(cfg)


def test_lycoris_locon_network_args(k2):
    assert k2.options["network_module"].value == "lycoris.kohya"
    args = k2.options["network_args"].value
    assert args[:3] == ["preset=attn-mlp", "conv_dim=4", "conv_alpha=2"] and "algo=locon" in args
    assert k2.options["network_args"].prov.kind == "derived"


def test_legacy_locon_type_rewritten(partial):
    assert partial.options["network_module"].value == "lycoris.kohya"
    assert 'LoRA_type "LoCon"' in partial.options["network_module"].prov.conversion


@pytest.mark.parametrize("lora_type,module,expect", [
    ("Kohya LoCon", "networks.lora", ["conv_dim=4", "conv_alpha=2"]),
    ("LoRA-FA", "networks.lora_fa", []),
    ("Kohya DyLoRA", "networks.dylora", ["conv_dim=4", "conv_alpha=2", "unit=4"]),
    ("LyCORIS/LoKr", "lycoris.kohya", ["factor=8", "algo=lokr"]),
    ("LyCORIS/Diag-OFT", "lycoris.kohya", ["constrain=0.5", "algo=diag-oft"]),
    ("LyCORIS/DyLoRA", "lycoris.kohya", ["block_size=4", "algo=dylora"]),
])
def test_lora_type_table(tmp_path, lora_type, module, expect):
    cfg = read(write(tmp_path, {"LoRA_type": lora_type, "conv_dim": 4, "conv_alpha": 2, "unit": 4, "factor": 8,
                                "constrain": 0.5, "max_resolution": "512,512", "down_lr_weight": ""}))
    assert cfg.options["network_module"].value == module
    got = cfg.get("network_args", [])
    for e in expect:
        assert e in got
    if lora_type == "LoRA-FA":
        assert not any(a.startswith("conv_") for a in got)


def test_constraint_spelling_by_era(tmp_path):
    base = {"LoRA_type": "LyCORIS/Diag-OFT", "constrain": 0.5, "max_resolution": "512,512"}
    old = read(write(tmp_path, base, "old.json"))
    new = read(write(tmp_path, dict(base, lr_warmup_steps=0), "new.json"))
    assert "constrain=0.5" in old.options["network_args"].value and "kohya-gui-constrain-spelling" in codes(old)
    assert new.era == "K5" and "constraint=0.5" in new.options["network_args"].value


def test_k0_step_formula_has_no_reg_factor(tmp_path):
    img = tmp_path / "img" / "2_x"
    img.mkdir(parents=True)
    for i in range(5):
        (img / f"{i}.jpg").write_bytes(b"x")
    (tmp_path / "reg").mkdir()
    cfg = read(write(tmp_path, {"use_8bit_adam": False, "max_resolution": "512,512", "lr_warmup": "0",
                                "train_data_dir": str(tmp_path / "img"), "reg_data_dir": str(tmp_path / "reg"),
                                "epoch": "3", "train_batch_size": 2, "gradient_accumulation_steps": 2.0}))
    assert cfg.era == "K0"
    # ceil(10 / 2 x 3) = 15: no x2 for regularisation, no division by gradient accumulation in K0
    assert cfg.options["max_train_steps"].value == 15


def test_block_weights_for_standard(tmp_path):
    cfg = read(write(tmp_path, {"LoRA_type": "Standard", "down_lr_weight": "1,1,0.5", "block_dims": "",
                                "conv_dim": 8, "max_resolution": "512,512"}))
    assert cfg.options["network_args"].value == ["down_lr_weight=1,1,0.5"]
    assert "kohya-gui-conv-ignored" in codes(cfg)


def test_optimizer_args_quotes_removed(k2):
    s = k2.options["optimizer_args"]
    assert s.value == ["decouple=True", "weight_decay=0.01"] and "quotes removed" in s.prov.conversion
    assert "kohya-gui-args-string-split" in codes(k2)


def test_warmup_percent_of_explicit_steps_k2(k2):
    s = k2.options["lr_warmup_steps"]
    assert s.value == 100 and "percent" in s.prov.conversion and "1000 steps" in s.prov.conversion


def test_warmup_k5_is_ratio(tmp_path):
    cfg = read(write(tmp_path, {"LoRA_type": "Standard", "lr_warmup": 10, "lr_warmup_steps": 0,
                                "max_train_steps": 1600, "max_resolution": "512,512"}))
    s = cfg.options["lr_warmup_steps"]
    assert s.value == 0.1 and isinstance(s.value, float) and "ratio" in s.prov.conversion


def test_warmup_steps_override_k5(tmp_path):
    cfg = read(write(tmp_path, {"LoRA_type": "Standard", "lr_warmup": 10, "lr_warmup_steps": 25,
                                "max_resolution": "512,512"}))
    assert cfg.options["lr_warmup_steps"].value == 25 and "kohya-gui-warmup-steps-override" in codes(cfg)


def test_warmup_dropped_with_constant_in_cmdline_era(tmp_path):
    cfg = read(write(tmp_path, {"LoRA_type": "Standard", "sdxl": False, "lr_scheduler": "constant", "lr_warmup": 10,
                                "max_train_steps": 100, "max_resolution": "512,512"}))
    assert "lr_warmup_steps" not in cfg.options and "kohya-gui-warmup-dropped-constant" in codes(cfg)


def test_epoch_to_steps_with_folders(tmp_path):
    img = tmp_path / "img"
    (img / "10_dog").mkdir(parents=True)
    for i in range(3):
        (img / "10_dog" / f"{i}.PNG").write_bytes(b"x")
    (img / "notrepeats").mkdir()
    reg = tmp_path / "reg"
    reg.mkdir()
    cfg = read(write(tmp_path, {"LoRA_type": "Standard", "sdxl": False, "train_data_dir": str(img),
                                "reg_data_dir": str(reg), "epoch": 2, "max_train_steps": "", "train_batch_size": 4,
                                "gradient_accumulation_steps": 1, "lr_warmup": 10, "max_resolution": "512,512"}))
    s = cfg.options["max_train_steps"]
    # ceil(30 / 4 / 1 * 2 * 2) = 30
    assert s.value == 30 and s.prov.kind == "derived" and "x 2" in s.prov.conversion
    # the folder also became the dataset (spine's kohya_folder): one subset, 10 repeats, class tokens "dog"
    subs = [sub for *_, sub in cfg.iter_subsets()]
    assert len(subs) == 1 and subs[0].get("num_repeats") == 10 and subs[0].get("class_tokens") == "dog"
    assert cfg.options["lr_warmup_steps"].value == 3
    assert "kohya-gui-epoch-to-steps" in codes(cfg)


def test_epoch_without_folders_is_carried_as_max_train_epochs(k0):
    """The GUI counted the images to turn epoch into steps; without them the epoch count keeps its meaning as
    sd-scripts' max_train_epochs and the percent warmup as a ratio (issue #10 item 6)."""
    note = next(n for n in k0.notes if n.code == "kohya-gui-epoch-as-max-train-epochs")
    assert note.data["epoch"] == 2 and note.data["train_batch_size"] == 2 and note.data["reg_factor"] == 1
    assert "max_train_steps" not in k0.options
    s = k0.options["max_train_epochs"]
    assert s.value == 2 and s.prov.kind == "derived" and "bucket" in s.prov.conversion
    w = k0.options["lr_warmup_steps"]
    assert isinstance(w.value, float) and 0 < w.value < 1 and "ratio" in w.prov.conversion


def test_epoch_ignored_when_steps_set(k2):
    assert k2.options["max_train_steps"].value == 1000 and "kohya-gui-epoch-ignored" in codes(k2)


def test_dataset_config_without_steps(tmp_path):
    cfg = read(write(tmp_path, {"LoRA_type": "Standard", "dataset_config": "ds.toml", "max_train_steps": 0,
                                "lr_warmup": 10, "sdxl": False, "max_resolution": "512,512"}))
    assert "max_train_steps" not in cfg.options and "kohya-gui-dataset-config-no-steps" in codes(cfg)


def test_num_cycles_empty_uses_epoch(k2):
    s = k2.options["lr_scheduler_num_cycles"]
    assert s.value == 3 and s.prov.kind == "derived"


def test_zero_dropped_with_note(k2):
    note = next(n for n in k2.notes if n.code == "kohya-gui-zero-dropped")
    assert note.data["option"] == "max_grad_norm" and note.data["default"] == 1.0


def test_additional_parameters_override(k2):
    s = k2.options["max_grad_norm"]
    assert s.value == 0.0 and s.prov.origin.key == "additional_parameters"
    assert k2.options["network_train_unet_only"].value is True


def test_min_snr_gamma_truncated_cmdline_era(k2):
    s = k2.options["min_snr_gamma"]
    assert s.value == 5.0 and s.prov.kind == "frontend-quirk"


def test_clip_skip_1_not_passed_in_cmdline_era(k2, tmp_path):
    assert "clip_skip" not in k2.options and "max_token_length" not in k2.options
    cfg = read(write(tmp_path, {"LoRA_type": "Standard", "sdxl": False, "max_token_length": 50, "clip_skip": 1,
                                "max_resolution": "512,512"}))
    notes = [n for n in cfg.notes if n.code == "kohya-gui-cmdline-era-condition"]
    assert [n.data["option"] for n in notes] == ["max_token_length"]


def test_noise_type_selects_keys(k2):
    assert k2.options["multires_noise_iterations"].value == 6
    assert "noise_offset" not in k2.options and "kohya-gui-noise-type-inactive" in codes(k2)


def test_sdxl_checkbox_and_sdxl_only_keys(k2, tmp_path):
    assert k2.options["sdxl"].value is True and k2.options["no_half_vae"].value is True
    cfg = read(write(tmp_path, {"LoRA_type": "Standard", "sdxl": False, "sdxl_no_half_vae": True,
                                "max_resolution": "512,512"}))
    assert "no_half_vae" not in cfg.options and "kohya-gui-sdxl-only-ignored" in codes(cfg)


def test_save_model_as_forced(k2):
    s = k2.options["save_model_as"]
    assert s.value == "safetensors" and s.prov.kind == "frontend-quirk"


def test_sample_prompts_text_becomes_path(k2):
    s = k2.options["sample_prompts"]
    assert s.value == "out/sample/prompt.txt"
    note = next(n for n in k2.notes if n.code == "kohya-gui-sample-prompts-text")
    assert note.data["text"].startswith("a photo of sks dog")


def test_stop_te_ignored_for_lora(k2):
    assert "kohya-gui-stop-te-ignored" in codes(k2)


def test_use_wandb(k2, tmp_path):
    assert k2.options["log_with"].value == "wandb"           # K2: the GUI of that era honoured it
    cfg = read(write(tmp_path, {"LoRA_type": "Standard", "save_as_bool": False, "use_wandb": True,
                                "max_resolution": "512,512"}))
    assert "log_with" not in cfg.options and "kohya-gui-use-wandb-dropped" in codes(cfg)


def test_accelerate_keys_frontend_only(k2):
    fe = {f.key for f in k2.frontend_only}
    assert {"num_cpu_threads_per_process", "num_processes"} <= fe
    assert "kohya-gui-accelerate-options" in codes(k2)


def test_partial_preset_defaults(partial):
    s = partial.options["max_train_steps"]
    assert s.value == 1600 and s.prov.kind == "default" and "GUI default" in s.prov.conversion
    assert partial.options["resolution"].prov.kind == "default"
    assert "kohya-gui-partial-preset" in codes(partial)


def test_stray_keys_ignored(partial):
    fe = {f.key for f in partial.frontend_only}
    assert {"stop_text_encoder_training_pct", "sdxl_checkbox", "save_as_bool"} <= fe


def test_other_tab_noted(tmp_path):
    cfg = read(write(tmp_path, {"learning_rate_te": 1e-5, "no_token_padding": False, "max_resolution": "512,512",
                                "epoch": 1, "lr_warmup": 0}))
    assert cfg.tab == "dreambooth" and "kohya-gui-not-lora-tab" in codes(cfg)
    assert "learning_rate_te" in {f.key for f in cfg.frontend_only}


def test_truthy_false_string(tmp_path):
    cfg = read(write(tmp_path, {"LoRA_type": "Standard", "save_as_bool": False, "huggingface_repo_id": "False",
                                "resume_from_huggingface": "False", "max_resolution": "512,512"}))
    assert cfg.options["huggingface_repo_id"].value == "False" and "kohya-gui-truthy-string" in codes(cfg)
    s = cfg.options["resume_from_huggingface"]
    assert s.value is True and s.prov.kind == "frontend-quirk"


def test_every_note_code_listed(k0, k2, partial):
    for cfg in (k0, k2, partial):
        for n in cfg.notes:
            assert n.code in NOTE_CODES


def test_network_module_never_imported(tmp_path):
    cfg = read(write(tmp_path, {"LoRA_type": "os.system", "max_resolution": "512,512"}))
    assert [i.option for i in cfg.invalid] == ["network_module"]


@requires_corpus
def test_corpus_kohya_files_normalize_with_manifest_era():
    rows = {}
    for line in (CORPUS / "MANIFEST.md").read_text(encoding="utf-8").splitlines():
        if line.startswith("| `") and "kohya_ss GUI JSON" in line:
            cells = [c.strip() for c in line.split("|")]
            rows[cells[1].strip("`")] = cells[7]
    assert len(rows) > 100
    for name, era in rows.items():
        cfg = read(CORPUS / "kohya_ss" / name)
        assert cfg.era == era, name
        assert all(n.code in NOTE_CODES for n in cfg.notes)


def test_k5_list_lr_and_wandb_run_name_default():
    cfg = read(FIXTURES / "dialects" / "equivalence" / "k5_lora.json")
    s = cfg.options["text_encoder_lr"]
    assert s.value == [5e-05, 5e-05] and "two-element list" in s.prov.conversion
    w = cfg.options["wandb_run_name"]
    assert w.value == "mylora" and w.prov.kind == "derived"
    assert {"kohya-gui-t5xxl-lr", "kohya-gui-wandb-run-name-default"} <= set(codes(cfg))
    assert cfg.options["dynamo_backend"].value == "no"   # written into the GUI's TOML since 2024-04


def test_partial_preset_defaults_respect_era(tmp_path):
    cfg = read(write(tmp_path, {"LoRA_type": "Standard", "optimizer": "AdamW", "epoch": 2, "network_dim": 4}))
    assert cfg.era == "K1" and "kohya-gui-partial-preset" in codes(cfg)
    # max_train_steps 1600 (2024-04-19) and bucket limits (2023-07-16) are later GUI defaults
    assert "max_train_steps" not in cfg.options and "max_bucket_reso" not in cfg.options
    assert "kohya-gui-epoch-as-max-train-epochs" in codes(cfg) and cfg.get("max_train_epochs") == 2
    assert cfg.options["network_alpha"].prov.kind == "default"


def test_loraplus_by_era(tmp_path):
    k3 = read(write(tmp_path, {"LoRA_type": "Standard", "save_as_bool": False, "loraplus_lr_ratio": 16,
                               "max_resolution": "512,512"}, "k3.json"))
    assert "network_args" not in k3.options and "kohya-gui-loraplus-ignored" in codes(k3)
    k5 = read(write(tmp_path, {"LoRA_type": "Standard", "lr_warmup_steps": 0, "loraplus_lr_ratio": 16,
                               "max_resolution": "512,512"}, "k5.json"))
    assert k5.options["network_args"].value == ["loraplus_lr_ratio=16"]


def test_lora_network_weights_renamed(tmp_path):
    cfg = read(write(tmp_path, {"LoRA_type": "Standard", "lora_network_weights": "old.safetensors",
                                "model_list": "custom", "max_resolution": "512,512"}))
    s = cfg.options["network_weights"]
    assert s.value == "old.safetensors" and s.prov.kind == "renamed" and s.prov.origin.key == "lora_network_weights"
    assert "model_list" in {f.key for f in cfg.frontend_only}


def test_max_train_epochs_wins(tmp_path):
    cfg = read(write(tmp_path, {"LoRA_type": "Standard", "max_train_epochs": "5", "epoch": 1,
                                "max_resolution": "512,512"}))
    assert cfg.options["max_train_epochs"].value == 5 and "kohya-gui-max-train-epochs-wins" in codes(cfg)


def test_additional_parameters_unknown_option(tmp_path):
    # the tokens are appended to sd-scripts' command line: argparse refuses unknown options and stray words
    cfg = read(write(tmp_path, {"LoRA_type": "Standard", "additional_parameters": "--no_such_opt=1 stray",
                                "max_resolution": "512,512"}))
    (inv,) = [i for i in cfg.invalid if i.option == "additional_parameters"]
    assert "unrecognized arguments: --no_such_opt=1 stray" in inv.reason


def test_additional_parameters_parsed_like_argparse(tmp_path):
    # real values (legacy-dialects.md §2.4): "--max_grad_norm=0", "--log_prefix=xl-loha"; argparse also takes an
    # unambiguous prefix and an nargs list
    cfg = read(write(tmp_path, {"LoRA_type": "Standard", "max_resolution": "512,512", "network_dim": 8,
                                "additional_parameters": "--max_grad_norm=0 --log_pre=xl-loha --network_dim 64 "
                                                         "--optimizer_args weight_decay=0.1 betas=0.9,0.99"}))
    assert not cfg.invalid
    assert cfg.get("max_grad_norm") == 0.0 and cfg.get("log_prefix") == "xl-loha" and cfg.get("network_dim") == 64
    assert cfg.get("optimizer_args") == ["weight_decay=0.1", "betas=0.9,0.99"]
    assert cfg.options["network_dim"].prov.origin.key == "additional_parameters"
    cfg = read(write(tmp_path, {"LoRA_type": "Standard", "max_resolution": "512,512",
                                "additional_parameters": "--network_d 8"}))
    assert "ambiguous option" in cfg.invalid[0].reason


def test_t5xxl_lr_needs_te_and_inpainting_cache(tmp_path):
    cfg = read(write(tmp_path, {"LoRA_type": "Flux1", "flux1_checkbox": True, "text_encoder_lr": 0, "t5xxl_lr": 1e-5,
                                "unet_lr": 1e-4, "train_inpainting": True, "cache_latents": True,
                                "max_resolution": "512,512"}))
    assert {"kohya-gui-t5xxl-lr-needs-te", "kohya-gui-inpainting-no-cache"} <= set(codes(cfg))
    assert "cache_latents" not in cfg.options
