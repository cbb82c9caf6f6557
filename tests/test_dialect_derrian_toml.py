"""Derrian UI TOML reader (U1, U2): one test per rule of legacy-dialects.md §4."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from lora_compat.config.detect import detect_document
from lora_compat.config.dialects import derrian_toml
from lora_compat.config.loaders import load_document
from lora_compat.config.notes import NOTE_CODES

from shared_data import CORPUS, FIXTURES, requires_corpus

DER = FIXTURES / "dialects" / "derrian"


def read(path: Path):
    doc = load_document(str(path))
    det = detect_document(doc)
    assert det.dialect == "derrian-toml", det.reasons
    return derrian_toml.read(doc, det)


def codes(cfg) -> list[str]:
    return [n.code for n in cfg.notes]


@pytest.fixture(scope="module")
def u2():
    return read(DER / "u2_quirks.toml")


@pytest.fixture(scope="module")
def u1():
    return read(DER / "u1_custom_scheduler.toml")


def test_classify(u1, u2):
    assert u1.era == "U1" and u2.era == "U2" and u2.tab == "lora"
    assert derrian_toml.classify({"train_mode": {"train_mode": "textual_inversion"}})[:2] == ("U2", "textual_inversion")


def test_sections_to_options_with_key_paths(u2):
    s = u2.options["network_dim"]
    assert s.value == 16 and s.prov.kind == "kept" and s.prov.origin.key == "network_args.args.network_dim"
    assert s.prov.origin.line is not None


def test_dataset_args_to_general(u2):
    assert u2.general["resolution"].value == [1024, 768]
    assert u2.general["batch_size"].value == 2
    assert u2.general["max_bucket_reso"].value == 2048


def test_subsets_to_one_dataset(u2):
    assert len(u2.datasets) == 1 and len(u2.datasets[0].subsets) == 1
    sub = u2.datasets[0].subsets[0]
    assert sub.get("num_repeats") == 10 and sub.get("image_dir") == "img/10_cat"
    assert sub.params["num_repeats"].prov.origin.key == "subsets[0].num_repeats"
    assert "subsets[0].name" in {f.key for f in u2.frontend_only}


def test_falsy_values_dropped(u2):
    assert "seed" not in u2.options and "max_grad_norm" not in u2.options
    assert "keep_tokens" not in u2.datasets[0].subsets[0].params
    note = next(n for n in u2.notes if n.code == "derrian-toml-falsy-dropped")
    assert note.data["option"] == "max_grad_norm"


def test_u2_string_true(u2):
    s = u2.options["gradient_checkpointing"]
    assert s.value is True and s.prov.kind == "converted"


def test_sdxl_flag_and_clip_skip_removed(u2):
    assert u2.options["sdxl"].value is True and "clip_skip" not in u2.options
    assert "derrian-toml-clip-skip-sdxl" in codes(u2)


def test_full_bf16_forces_precision(u2):
    s = u2.options["mixed_precision"]
    assert s.value == "bf16" and s.prov.kind == "frontend-quirk"


def test_fa_selects_lora_fa(u2):
    s = u2.options["network_module"]
    assert s.value == "networks.lora_fa" and s.prov.kind == "derived"


def test_network_args_table(u2, u1):
    assert u2.options["network_args"].value == ["conv_dim=8", "down_lr_weight=1.0,0.5,0.0"]
    assert u1.options["network_module"].value == "lycoris.kohya"
    assert "algo=locon" in u1.options["network_args"].value


def test_optimizer_args_true_capitalised(u2):
    assert u2.options["optimizer_args"].value == ["weight_decay=0.01", "use_bias_correction=True"]


def test_custom_optimizer_remapped(u2):
    assert u2.options["optimizer_type"].value == "LoraEasyCustomOptimizer.came.CAME"
    assert "derrian-toml-custom-optimizer" in codes(u2)


def test_dim_from_weights_path(u2):
    s = u2.options["dim_from_weights"]
    assert s.value is True and "a path" in s.prov.conversion


def test_cache_latents_disables_subset_aug(u2):
    assert "random_crop" not in u2.datasets[0].subsets[0].params
    assert "derrian-toml-cache-latents-disables-aug" in codes(u2)


def test_ui_only_keys(u2, u1):
    assert "saving_args.args.easy_name" in {f.key for f in u2.frontend_only}
    assert "saving_args.args.tag_occurrence" in {f.key for f in u1.frontend_only}


def test_easy_name_and_u2_quoting(tmp_path):
    p = tmp_path / "e.toml"
    p.write_text('[train_mode]\ntrain_mode = "lora"\n[saving_args.args]\noutput_dir = "out/${replace}"\n'
                 'easy_name = "v3"\n[general_args.args]\npretrained_model_name_or_path = "m"\n'
                 'vae = \'C:\\vae\\x.safetensors\'\n[[subsets]]\nimage_dir = "i"\nname = "n"\n')
    cfg = read(p)
    s = cfg.options["output_dir"]
    assert s.value == "out/v3" and s.prov.kind == "frontend-quirk"
    assert "derrian-toml-easy-name" in codes(cfg) and "derrian-toml-u2-quoting" in codes(cfg)


def test_extra_args_pass_through(u2):
    s = u2.options["lr_decay_steps"]
    assert s.value == 0.2 and s.prov.origin.key == "extra_args.args.lr_decay_steps"


def test_warmup_unresolved_without_images(u2):
    assert "lr_warmup_steps" not in u2.options and "derrian-toml-warmup-unresolved" in codes(u2)


def test_warmup_ratio_to_steps(tmp_path):
    (tmp_path / "imgs").mkdir()
    for i in range(5):
        (tmp_path / "imgs" / f"{i}.jpg").write_bytes(b"x")
    text = (DER / "u1_custom_scheduler.toml").read_text()
    custom = 'lr_scheduler_type = "LoraEasyCustomOptimizer.CustomOptimizers.CosineAnnealingWarmupRestarts"\n'
    plain = text.replace(custom, "")
    (tmp_path / "plain.toml").write_text(plain)
    cfg = read(tmp_path / "plain.toml")
    # 5 images x 2 repeats x 3 epochs // batch 2 = 15 steps; round(15 x 0.1) = 2
    s = cfg.options["lr_warmup_steps"]
    assert s.value == 2 and "15 steps" in s.prov.conversion
    assert cfg.options["lr_scheduler_num_cycles"].value == 3


def test_custom_scheduler_warmup_in_scheduler_args(tmp_path):
    (tmp_path / "imgs").mkdir()
    for i in range(5):
        (tmp_path / "imgs" / f"{i}.jpg").write_bytes(b"x")
    shutil.copy(DER / "u1_custom_scheduler.toml", tmp_path / "c.toml")
    cfg = read(tmp_path / "c.toml")
    args = cfg.options["lr_scheduler_args"].value
    # Derrian (utils/validation.py validate_warmup_ratio): round(15 steps x 0.1) // 3 cycles = 2 // 3 = 0;
    # validate_restarts: first_cycle_steps = 15 // 3
    assert "warmup_steps=0" in args and "first_cycle_steps=5" in args and "min_lr=1e-06" in args
    assert "lr_warmup_steps" not in cfg.options and "lr_scheduler_num_cycles" not in cfg.options
    assert "derrian-toml-custom-scheduler" in codes(cfg)
    (tmp_path / "c.toml").write_text((DER / "u1_custom_scheduler.toml").read_text()
                                     .replace("warmup_ratio = 0.1", "warmup_ratio = 0.5"))
    args = read(tmp_path / "c.toml").options["lr_scheduler_args"].value
    assert "warmup_steps=2" in args      # round(15 x 0.5) = 8 (half to even), // 3 = 2


def test_not_lora_modes(tmp_path):
    p = tmp_path / "ti.toml"
    p.write_text('[train_mode]\ntrain_mode = "textual_inversion"\n[textual_inversion_args.args]\ntoken_string = "x"\n'
                 '[general_args.args]\npretrained_model_name_or_path = "m"\n[[subsets]]\nimage_dir = "i"\nname = "n"\n')
    cfg = read(p)
    assert "derrian-toml-not-lora" in codes(cfg)
    assert "textual_inversion_args.args.token_string" in {f.key for f in cfg.frontend_only}


def test_unknown_key_in_section(tmp_path):
    p = tmp_path / "u.toml"
    p.write_text('[general_args.args]\npretrained_model_name_or_path = "m"\nmy_key = 1\n[[subsets]]\nimage_dir = "i"\n'
                 'num_repeats = "many"\n')
    cfg = read(p)
    assert [u.key for u in cfg.unknown_keys] == ["general_args.args.my_key"]
    assert [(i.option, i.value) for i in cfg.invalid] == [("num_repeats", "many")]


@requires_corpus
def test_corpus_derrian_tomls():
    for name in ("README.md__example_config__ae5ce073.toml", "test__b77c7e59.toml"):
        cfg = read(CORPUS / "easy_training_scripts" / name)
        assert cfg.era == "U1" and not cfg.unknown_keys
        # the UI's empty template (image_dir = ""): an unknown folder, a note, never a refusal
        assert not cfg.invalid
        assert ("image-folder-unset" in {n.code for n in cfg.notes}) == name.startswith("test")
        assert cfg.datasets and cfg.datasets[0].subsets
        assert all(n.code in NOTE_CODES for n in cfg.notes)


def test_u2_bucket_aware_step_count(tmp_path):
    image = pytest.importorskip("PIL.Image")
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i, size in enumerate([(512, 512)] * 3 + [(768, 512)]):
        image.new("RGB", size).save(folder / f"{i}.png")
    (tmp_path / "u2.toml").write_text(
        '[train_mode]\ntrain_mode = "lora"\n[general_args.args]\npretrained_model_name_or_path = "m"\n'
        'max_train_epochs = 2\n[general_args.dataset_args]\nresolution = 512\nbatch_size = 2\n'
        '[bucket_args.dataset_args]\nenable_bucket = true\nmin_bucket_reso = 256\nmax_bucket_reso = 1024\n'
        'bucket_reso_steps = 64\n[optimizer_args.args]\nwarmup_ratio = 0.5\n'
        '[[subsets]]\nimage_dir = "imgs"\nnum_repeats = 1\nname = "s"\n')
    cfg = read(tmp_path / "u2.toml")
    # buckets {512x512: 3, wide: 1} -> ceil(3/2) + ceil(1/2) = 3 batches x 2 epochs = 6 (U1 formula: 4)
    s = cfg.options["lr_warmup_steps"]
    assert s.value == 3 and "6 steps" in s.prov.conversion and "approximate" not in s.prov.conversion


def test_flux_module_and_constrain_spelling(tmp_path):
    p = tmp_path / "f.toml"
    p.write_text('[train_mode]\ntrain_mode = "lora"\n[general_args.args]\npretrained_model_name_or_path = "m"\n'
                 '[flux_args.args]\nguidance_scale = 1.0\n[network_args.args.network_args]\nalgo = "diag-oft"\n'
                 'constrain = 0.5\n[[subsets]]\nimage_dir = "i"\nname = "n"\n')
    cfg = read(p)
    # the backend (utils/validation.py) sets lycoris.kohya for `algo` first and picks networks.lora_flux only when
    # no module was chosen: LyCORIS on FLUX.1 stays LyCORIS
    assert cfg.options["network_module"].value == "lycoris.kohya"
    assert "constrain=0.5" in cfg.options["network_args"].value
    assert {"derrian-toml-constrain-misspelt"} <= set(codes(cfg)) and "derrian-toml-not-lora" not in codes(cfg)
    p.write_text(p.read_text().replace('algo = "diag-oft"\n', ""))
    assert read(p).options["network_module"].value == "networks.lora_flux"
