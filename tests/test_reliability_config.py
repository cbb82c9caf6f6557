"""Issue #12 (items 1, 2, 3, 6) and #10 (items 4, 6) on the config side: every minimal reproducer of the issues is
a test here. Bounds of time and size, text that is not Unicode, migrate outputs that must read back, credentials
in every output, absent files, and migrations that keep their meaning without the image folders."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from test_spine_load import run_cli

from lora_compat.config.load import load_config

SECRET = "wb-PLANTED-7f3c9a"


def write(tmp_path: Path, name: str, text: str) -> str:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return str(p)


# ------------------------------------------------------------------------------------------- #12.1 bounds
def test_show_text_clips_a_four_million_character_value(tmp_path) -> None:
    """`show --format text` took 37 s on a 4 M-character value (rich folding it); json/toml keep it whole."""
    p = write(tmp_path, "big.json", json.dumps({"LoRA_type": "Standard", "max_resolution": "512,512",
                                                 "output_name": "y" * 4_000_000}))
    start = time.perf_counter()
    code, out, err = run_cli("show", p)
    assert code == 0, err
    assert time.perf_counter() - start < 20
    flat = "".join(ch for ch in out if not ch.isspace() and ch not in "│┃")   # the table folds the cell
    assert "(3,999,002morecharacters;--formatjsonshowsall)" in flat and len(out) < 200_000
    code, out, _ = run_cli("show", p, "--format", "json")
    assert json.loads(out)["options"]["output_name"] == "y" * 4_000_000


# ------------------------------------------------------------------------------------------- #12.2 Unicode
@pytest.mark.parametrize("escape", ["\\ud800", "\\udcff"])
def test_lone_surrogate_escapes_are_refused_at_load_naming_key_and_line(tmp_path, escape: str) -> None:
    p = write(tmp_path, "u.json", '{"LoRA_type": "Standard",\n "output_name": "a' + escape + 'b"}')
    for args in (("show", p, "--format", "json"), ("show", p, "--format", "toml"),
                 ("migrate", p, "--to", "native", "-o", str(tmp_path / "o.toml"))):
        code, out, err = run_cli(*args)
        assert code == 2 and out == "", (args, out)
        assert err.startswith(f"error: {p}:2:") and "output_name: not valid Unicode text" in err
    assert not (tmp_path / "o.toml").exists()
    for fmt in ("json", "sarif"):
        code, out, err = run_cli("lint", p, "--format", fmt)
        out.encode("utf-8")                    # no lone surrogate (and so no 0xFF byte on a C-locale stdout)
        json.loads(out)


def test_a_file_name_that_is_not_utf8_still_gives_valid_utf8_outputs(tmp_path) -> None:
    name = os.fsdecode(b"bad\xffname.json")
    p = tmp_path / name
    p.write_text('{"LoRA_type": "Standard", "max_resolution": "512,512", "network_dim": 8}')
    for args in (("show", str(p), "--format", "json"), ("lint", str(p), "--format", "json"),
                 ("lint", str(p), "--format", "sarif")):
        _code, out, err = run_cli(*args)
        (out + err).encode("utf-8")
        json.loads(out)


# ------------------------------------------------------------------------------------------- #12.3 read back
def _migrate_and_show(tmp_path: Path, src: str, to: str) -> dict:
    out = str(tmp_path / ("out.json" if to == "kohya-gui" else "out.toml"))
    code, _, err = run_cli("migrate", src, "--to", to, "-o", out, "--force")
    assert code == 0, err
    code, text, err = run_cli("show", out, "--format", "json")
    assert code == 0, (to, err)
    return json.loads(text)


def test_gui_output_without_a_resolution_reads_back(tmp_path) -> None:
    src = write(tmp_path, "r.toml", 'network_module = "networks.lora"\nnetwork_dim = 8\n')
    back = _migrate_and_show(tmp_path, src, "kohya-gui")
    assert "resolution" not in back["options"] and back["options"]["network_dim"] == 8


def test_migrate_output_of_a_comment_only_config_reads_back(tmp_path) -> None:
    src = write(tmp_path, "empty.sh", "accelerate launch sdxl_train_network.py\n")
    for to in ("sd-scripts", "native", "kohya-gui"):
        back = _migrate_and_show(tmp_path, src, to)
        assert back["options"]["sdxl"] is True, to


def test_a_mask_dataset_config_migrates_with_masked_loss(tmp_path) -> None:
    src = write(tmp_path, "ds.toml", '[[datasets]]\nresolution = 512\n[[datasets.subsets]]\nimage_dir = "/i"\n'
                                     'conditioning_data_dir = "/m"\n')
    cfg = load_config(src)
    assert cfg.get("masked_loss") is True and not cfg.invalid
    back = _migrate_and_show(tmp_path, src, "sd-scripts")
    assert back["options"]["masked_loss"] is True
    assert back["datasets"][0]["subsets"][0]["conditioning_data_dir"] == "/m"


def test_derrian_subset_without_an_image_folder_is_a_note_and_reads_back(tmp_path) -> None:
    src = write(tmp_path, "d.toml", '[[subsets]]\nnum_repeats = 1\nimage_dir = ""\n\n'
                                    '[general_args.args]\npretrained_model_name_or_path = "m.safetensors"\n'
                                    'max_train_epochs = 2\n[network_args.args]\nnetwork_dim = 8\n')
    code, out, _err = run_cli("show", src, "--format", "json")
    assert code == 0 and "image-folder-unset" in {n["code"] for n in json.loads(out)["notes"]}
    for target in ("native", "sd-scripts", "kohya-gui"):
        back = _migrate_and_show(tmp_path, src, target)
        assert back["datasets"][0]["subsets"][0]["image_dir"] == ""
        assert back["options"]["max_train_epochs"] == 2


def test_native_datasets_with_a_training_option_are_invalid(tmp_path) -> None:
    src = write(tmp_path, "n.toml", 'format = "lora-compat/1"\n[network]\nkind = "lora"\nr = 4\n'
                                    '[[datasets]]\nlearning_rate = 0.5\n[[datasets.subsets]]\nimage_dir = "/x"\n')
    cfg = load_config(src)
    assert [(i.option, i.origin.line) for i in cfg.invalid] == [("learning_rate", 6)]
    for cmd in ("plan", "migrate"):
        args = [cmd, src] + (["--to", "sd-scripts", "-o", str(tmp_path / "o.toml")] if cmd == "migrate" else [])
        code, _, err = run_cli(*args)
        assert code == 2 and "learning_rate" in err


# ------------------------------------------------------------------------------------------- #12.6 secrets
def test_a_credential_given_twice_is_never_written_by_lint_fix(tmp_path) -> None:
    src = write(tmp_path, "k.json", json.dumps({
        "LoRA_type": "Standard", "max_resolution": "512,512", "wandb_api_key": SECRET,
        "additional_parameters": f"--wandb_api_key={SECRET} --network_dim 16"}))
    _code, out, err = run_cli("lint", src, "--fix", "-o", str(tmp_path / "fixed.json"))
    assert SECRET not in out + err
    written = (tmp_path / "fixed.json").read_text(encoding="utf-8")
    assert SECRET not in written
    json.loads(written)


def test_the_first_of_two_credentials_in_additional_parameters_is_never_shown(tmp_path) -> None:
    src = write(tmp_path, "k.json", json.dumps({
        "LoRA_type": "Standard", "max_resolution": "512,512",
        "additional_parameters": f"--wandb_api_key={SECRET}-A --wandb_api_key={SECRET}-B"}))
    outputs = []
    for fmt in ("json", "text", "toml"):
        outputs.append(run_cli("show", src, "--format", fmt))
    outputs.append(run_cli("migrate", src, "--to", "sd-scripts", "-o", str(tmp_path / "o.toml"), "--format", "json"))
    outputs.append(run_cli("migrate", src, "--to", "kohya-gui", "-o", str(tmp_path / "o.json")))
    outputs.append(run_cli("lint", src, "--format", "sarif"))
    for _code, out, err in outputs:
        assert SECRET not in out + err
    for f in tmp_path.iterdir():
        assert SECRET not in f.read_text(encoding="utf-8") or f.name == "k.json"
    data = json.loads(outputs[0][1])
    assert "***REDACTED***" in json.dumps(data["provenance"]) + json.dumps(data["frontend_only"])


def test_an_unknown_credential_option_is_not_echoed_in_errors(tmp_path) -> None:
    src = write(tmp_path, "t.sh", f"accelerate launch train_network.py --hf_token={SECRET} --network_dim 4 "
                                  f"--my_api_key {SECRET}2\n")
    for args in (("show", src), ("show", src, "--format", "json"), ("lint", src, "--format", "json"),
                 ("migrate", src, "--to", "native", "-o", str(tmp_path / "o.toml")), ("plan", src)):
        code, out, err = run_cli(*args)
        assert SECRET not in out + err, args
        assert code in (1, 2)
    cfg = load_config(src)
    assert "unrecognized arguments" in cfg.invalid[0].reason


def test_scrub_is_the_one_place() -> None:
    """migrate and show no longer reach into the lint wing for credential helpers."""
    root = Path(__file__).resolve().parent.parent / "lora_compat"
    for rel in ("migrate/report.py", "migrate/run.py", "cli/show_cmd.py"):
        text = (root / rel).read_text(encoding="utf-8")
        assert "lora_compat.lint" not in text, rel


# ------------------------------------------------------------------------------------------- #10.4 absent files
def test_absent_dataset_config_and_base_model_never_block_reading(tmp_path) -> None:
    src = write(tmp_path, "run.sh", "accelerate launch sdxl_train_network.py --pretrained_model_name_or_path="
                                    "a.safetensors --dataset_config=ds.toml --network_module=networks.lora "
                                    "--learning_rate=1e-4\n")
    code, out, err = run_cli("show", src, "--format", "json")
    assert code == 0, err
    data = json.loads(out)
    assert data["options"]["sdxl"] is True
    assert "dataset-config-missing" in {n["code"] for n in data["notes"]}
    code, out, err = run_cli("plan", src, "--format", "json")
    assert code == 0, err
    code, _, err = run_cli("lint", src)
    assert "Traceback" not in err
    code, _, err = run_cli("migrate", src, "--to", "sd-scripts", "-o", str(tmp_path / "o.toml"))
    assert code == 0, err
    assert "dataset_config = " in (tmp_path / "o.toml").read_text()


def test_absent_config_file_is_a_note_and_train_still_refuses(tmp_path) -> None:
    src = write(tmp_path, "run.sh", "accelerate launch train_network.py --config_file=/nowhere/cfg.toml "
                                    "--network_dim 4\n")
    cfg = load_config(src)
    assert cfg.get("network_dim") == 4 and "config-file-missing" in {n.code for n in cfg.notes}
    from lora_compat.errors import UserError

    with pytest.raises(UserError, match="not found"):
        load_config(src, resolve_dataset=True)


# ------------------------------------------------------------------------------------------- #10.6 meaning
def test_gui_epoch_and_percent_warmup_migrate_without_image_folders(tmp_path) -> None:
    src = write(tmp_path, "g.json", json.dumps({"LoRA_type": "Standard", "epoch": 10, "lr_warmup": 10}))
    for to, _key in (("native", ("training", "max_train_epochs")), ("sd-scripts", ("max_train_epochs",))):
        out = tmp_path / f"o_{to}.toml"
        code, _text, err = run_cli("migrate", src, "--to", to, "-o", str(out), "--strict")
        assert code == 0, err                     # nothing lost: --strict passes
        from lora_compat.tomlparse import tomllib

        data = tomllib.loads(out.read_text())
        if to == "sd-scripts":
            assert data["max_train_epochs"] == 10 and data["lr_warmup_steps"] == 0.1
        else:
            assert data["training"]["max_train_epochs"] == 10 and data["scheduler"]["warmup_ratio"] == 0.1
    cfg = load_config(src)
    assert "bucket" in cfg.options["max_train_epochs"].prov.conversion


def test_migrate_images_resolves_the_gui_formula_like_plan(tmp_path) -> None:
    src = write(tmp_path, "g.json", json.dumps({
        "LoRA_type": "Standard", "epoch": 2, "max_train_steps": 0, "train_batch_size": 2, "lr_warmup": 10,
        "train_data_dir": "/nonexistent/img", "max_resolution": "512,512"}))
    out = tmp_path / "o.toml"
    code, _, err = run_cli("migrate", src, "--to", "sd-scripts", "-o", str(out), "--images", "10_sks dog=5")
    assert code == 0, err
    text = out.read_text()
    # GUI: ceil(5 images x 10 repeats / batch 2 / grad_acc 1 x epoch 2) = 50 steps; round(10% x 50) = 5
    assert "max_train_steps = 50" in text and "lr_warmup_steps = 5" in text
    code, out_json, err = run_cli("plan", src, "--images", "10_sks dog=5", "--format", "json")
    steps = json.loads(out_json)["steps"]
    assert (steps["max_train_steps"], steps["warmup_steps"]) == (50, 5)


def test_every_source_key_gets_a_report_line(tmp_path) -> None:
    src = write(tmp_path, "g.json", json.dumps({"LoRA_type": "Standard", "=== Basic ===": None, "seed": None,
                                                 "max_resolution": "512,512", "reg_data_dir": "",
                                                 "max_data_loader_n_workers": "0", "network_dim": 8}))
    code, out, err = run_cli("migrate", src, "--to", "sd-scripts", "-o", str(tmp_path / "o.toml"),
                             "--format", "json")
    assert code == 0, err
    report = json.loads(out)
    keys = {e["source_key"] for e in report["entries"]}
    assert {"LoRA_type", "=== Basic ===", "seed", "max_resolution", "reg_data_dir", "max_data_loader_n_workers",
            "network_dim"} <= keys
    sep = next(e for e in report["entries"] if e["source_key"] == "=== Basic ===")
    assert "separator" in sep["detail"] and not sep["loss"]
    # K0-K2 GUIs pass "0" workers; dropping it would give sd-scripts' 8
    assert "max_data_loader_n_workers = 0" in (tmp_path / "o.toml").read_text()


def test_gui_output_lints_clean_with_our_own_lint(tmp_path) -> None:
    src = write(tmp_path, "r.toml", 'network_module = "networks.lora"\nnetwork_dim = 8\nnetwork_alpha = 4\n'
                                    'resolution = "512,512"\nlearning_rate = 1e-4\noptimizer_type = "AdamW"\n'
                                    'max_train_epochs = 4\nlr_scheduler = "cosine"\n')
    out = tmp_path / "gui.json"
    code, _, err = run_cli("migrate", src, "--to", "kohya-gui", "-o", str(out))
    assert code == 0, err
    code, text, err = run_cli("lint", str(out), "--format", "json")
    findings = json.loads(text)["findings"]
    assert findings and not [f for f in findings if f["severity"] in ("error", "warning")], findings
