"""Derrian ArgStore JSON reader (A1, A2, XTI): one test per rule of legacy-dialects.md §3."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from lora_compat.config.detect import detect_document
from lora_compat.config.dialects import derrian_argstore
from lora_compat.config.loaders import load_document
from lora_compat.config.notes import NOTE_CODES

from shared_data import CORPUS, FIXTURES, requires_corpus

DER = FIXTURES / "dialects" / "derrian"


def read(path: Path):
    doc = load_document(str(path))
    det = detect_document(doc)
    assert det.dialect == "derrian-argstore", det.reasons
    return derrian_argstore.read(doc, det)


def codes(cfg) -> list[str]:
    return [n.code for n in cfg.notes]


@pytest.fixture(scope="module")
def a1():
    return read(DER / "a1_quirks.json")


@pytest.fixture(scope="module")
def a2():
    return read(DER / "a2_quirks.json")


@pytest.fixture(scope="module")
def alias():
    return read(DER / "a2_kohya_alias.json")


def test_classify(a1, a2):
    assert a1.era == "A1" and a2.era == "A2"
    assert derrian_argstore.classify({"token_string": "x", "init_word": "y"})[0] == "XTI"
    assert derrian_argstore.classify({"base_model": "", "resume": None})[0] == "A2"
    assert derrian_argstore.classify({"base_model": "", "load_previous_save_state": None})[0] == "A1"


def test_renames_with_provenance(a1):
    s = a1.options["network_dim"]
    assert s.value == 128 and s.prov.kind == "renamed" and s.prov.conversion == "net_dim -> network_dim"
    assert s.prov.origin.key == "net_dim" and s.prov.origin.line
    assert a1.options["seed"].value == 23 and a1.options["seed"].prov.origin.key == "test_seed"
    assert a1.options["max_token_length"].value == 150


def test_a1_gradient_acc_dropped_without_checkpointing(a1):
    assert "gradient_accumulation_steps" not in a1.options
    note = next(n for n in a1.notes if n.code == "derrian-a1-drops-gradient-acc")
    assert note.data["value"] == 4 and note.origin.key == "gradient_acc_steps"


def test_a1_unet_wins_over_text(a1):
    assert a1.options["network_train_unet_only"].value is True
    assert "network_train_text_encoder_only" not in a1.options and "derrian-a1-unet-wins" in codes(a1)


def test_a2_passes_both_train_parts(a2):
    assert a2.options["network_train_unet_only"].value and a2.options["network_train_text_encoder_only"].value
    assert "derrian-a2-both-train-parts" in codes(a2)


def test_a1_random_crop_dropped_with_cache(a1, a2):
    assert "random_crop" not in a1.options and "derrian-a1-random-crop-dropped" in codes(a1)
    assert a2.options["random_crop"].value is True and "derrian-a2-random-crop-with-cache" in codes(a2)


def test_a1_save_every_null_is_999999(a1):
    s = a1.options["save_every_n_epochs"]
    assert s.value == 999999 and s.prov.kind == "frontend-quirk"


def test_a1_conditions(a1):
    # cosine_restarts only with cosine_with_restarts; v_parameterization only with v2; LR > 0
    assert "lr_scheduler_num_cycles" not in a1.options and "v_parameterization" not in a1.options
    assert "text_encoder_lr" not in a1.options
    dropped = [n.data.get("option") for n in a1.notes if n.code == "derrian-a1-condition-dropped"]
    assert "lr_scheduler_num_cycles" in dropped and "v_parameterization" in dropped


def test_a1_lion_ignored_with_8bit(a1):
    assert a1.options["use_8bit_adam"].value is True and "use_lion_optimizer" not in a1.options
    assert "derrian-a1-lion-ignored" in codes(a1)


def test_a1_epochs_as_max_train_epochs_after_feb4(a1):
    assert a1.options["max_train_epochs"].value == 1 and a1.options["max_train_epochs"].prov.origin.key == "num_epochs"


def test_a1_5_epochs_to_steps_with_reg_double(tmp_path):
    for name, n in (("IMG/5_cat", 4), ("REG/1_cat", 2)):
        (tmp_path / name).mkdir(parents=True)
        for i in range(n):
            (tmp_path / name / f"{i}.png").write_bytes(b"x")
    shutil.copy(DER / "a1_5_steps.json", tmp_path / "a1.json")
    cfg = read(tmp_path / "a1.json")
    s = cfg.options["max_train_steps"]
    # 5 x 4 images = 20 / batch 2 = 10 per epoch x 2 epochs = 20, x2 for regularisation images = 40
    assert s.value == 40 and s.prov.kind == "derived"
    assert cfg.options["lr_warmup_steps"].value == 4          # int(40 x 0.1)
    assert cfg.options["lr_scheduler_num_cycles"].value == 3  # cosine_with_restarts: passed
    assert "max_train_epochs" not in cfg.options


def test_a2_network_lyco_and_args(a2):
    assert a2.options["network_module"].value == "lycoris.kohya"
    assert a2.options["network_args"].value == ["conv_dim=8", "conv_alpha=4", "algo=loha"]
    assert "derrian-a2-network-module-ignored" in codes(a2)


def test_a2_dadaptation_decouple_and_betas_rules(a2, tmp_path):
    assert a2.options["optimizer_args"].value[-1] == "decouple=True"
    data = json.loads((DER / "a2_quirks.json").read_text())
    data.update(optimizer_type="AdaFactor", lyco=False, network_args={"unit": "4"})
    p = tmp_path / "a.json"
    p.write_text(json.dumps(data))
    cfg = read(p)
    assert cfg.options["optimizer_args"].value == ["weight_decay=0.1"]
    assert "derrian-a2-betas-dropped" in codes(cfg)
    assert cfg.options["network_module"].value == "networks.dylora"


def test_a2_falsy_dropped(a2):
    assert "max_grad_norm" not in a2.options
    note = next(n for n in a2.notes if n.code == "derrian-a2-falsy-dropped")
    assert note.data["option"] == "max_grad_norm"


def test_a2_max_steps_and_warmup(a2):
    assert a2.options["max_train_steps"].value == 1000 and "max_train_epochs" not in a2.options
    s = a2.options["lr_warmup_steps"]
    assert s.value == 50 and s.prov.conversion.startswith("warmup_lr_ratio 0.05 x 1000 steps")


def test_a2_height_resolution(a2):
    assert a2.options["resolution"].value == "512,768"


def test_a2_ignores_a1_resume_key(a2):
    assert "resume" not in a2.options and "derrian-key-ignored" in codes(a2)


def test_xformers_string_truthy(a2):
    assert a2.options["xformers"].value is True and "derrian-xformers-string-truthy" in codes(a2)


def test_kohya_alias_table(alias):
    s = alias.options["network_dim"]
    assert s.value == 64 and s.prov.origin.key == "network_dim"      # the alias overwrites net_dim
    assert alias.options["resolution"].value == "640,640"
    assert alias.options["max_train_epochs"].prov.origin.key == "epoch"
    assert "derrian-kohya-warmup-percent" in codes(alias)


def test_xti_not_lora():
    cfg = read(DER / "xti.json")
    assert cfg.era == "XTI" and "derrian-xti-not-lora" in codes(cfg)
    assert cfg.options["learning_rate"].value == 0.005 and "seed" not in cfg.options
    assert "token_string" in {f.key for f in cfg.frontend_only}


def test_workflow_keys_frontend_only(a1):
    fe = {f.key for f in a1.frontend_only}
    assert {"list_of_json_to_run", "json_load_skip_list", "save_json_folder"} <= fe


@requires_corpus
def test_corpus_argstore_versions():
    files = sorted((CORPUS / "easy_training_scripts" / "argstore").glob("*.json"))
    assert len(files) == 46
    for f in files:
        cfg = read(f)
        assert cfg.era == ("A2" if "ArgsList" in f.name else "A1"), f.name
        assert not cfg.invalid and not cfg.unknown_keys, f.name
        assert all(n.code in NOTE_CODES for n in cfg.notes)
        # A1 never passes gradient accumulation without checkpointing; defaults have neither
        if cfg.era == "A1":
            assert cfg.options["network_module"].value == "networks.lora"
            assert "gradient_accumulation_steps" not in cfg.options
        else:
            assert cfg.options["network_module"].value == "networks.lora"


def test_a2_early_locon_and_popup_typos(tmp_path):
    data = json.loads((DER / "a2_quirks.json").read_text())
    for k in ("lyco", "network_args"):
        data.pop(k)
    data.update(locon=True, locon_dim=8, locon_alpha=None, sample_every_n_epoch=2)
    p = tmp_path / "a.json"
    p.write_text(json.dumps(data))
    cfg = read(p)
    # A2.1-A2.2: LoCon through the separate locon package, conv_alpha defaulting to conv_dim
    assert cfg.options["network_module"].value == "locon.locon.locon_kohya"
    assert cfg.options["network_args"].value == ["conv_dim=8", "conv_alpha=8"]
    s = cfg.options["sample_every_n_epochs"]
    assert s.value == 2 and s.prov.origin.key == "sample_every_n_epoch"


def test_a1_popup_8bit_adam_typo(tmp_path):
    data = json.loads((DER / "a1_quirks.json").read_text())
    data["8bit_adam"] = True
    p = tmp_path / "a.json"
    p.write_text(json.dumps(data))
    cfg = read(p)
    assert "8bit_adam" in {f.key for f in cfg.frontend_only} and "derrian-key-ignored" in codes(cfg)
