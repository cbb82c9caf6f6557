"""FLUX.1 / Chroma migrate (#13 item 4): every FLUX fixture (an sd-scripts --config_file TOML, a
flux_train_network.py command line, a Derrian [flux_args] TOML, a Chroma TOML) and every corpus FLUX preset migrates
to every target, and what migrate writes reads back with `show` exit 0 and the same configuration:

* sd-scripts TOML and native TOML: exactly the same canonical options and datasets (every option kept);
* kohya_ss GUI JSON: the same effective options (the GUI file holds every field), except the options the report
  marks as lost, each with the reason the GUI cannot express it; the losses are pinned per input.

What the kohya_ss GUI does with its FLUX fields comes from kohya_gui/lora_gui.py train_model and class_flux1.py
(modern-archs.md §6.1); what networks.lora_flux reads from network_args from sd-scripts networks/lora_flux.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lora_compat.config.load import load_config
from lora_compat.migrate.run import migrate_file, render, write_atomically

from shared_data import (
    CORPUS,
    FIXTURES,
    migrated_datasets,
    migrated_effective,
    migrated_options,
    on_command_line,
)

FLUX_FIXTURES = sorted((FIXTURES / "flux").glob("*"))
CORPUS_FLUX = [CORPUS / "kohya_ss" / n for n in ("flux1D - adamw8bit fp8.json",
                                                  "flux1D - adamw8bit fp8__647295aa.json")]
SOURCES = FLUX_FIXTURES + [p for p in CORPUS_FLUX if p.is_file()]
FAMILY = {"chroma_lora.toml": "chroma"}

# What the kohya_ss GUI cannot express, per input (option -> why, checked against the report): anything else the
# migration loses fails the test.
GUI_LOSSES: dict[str, set[str]] = {
    "flux_lora.toml": set(),
    # the GUI writes network_args itself and has no field for CLIP-L/T5 rates beyond [te, t5xxl_lr]: both kept
    "flux_train.sh": set(),
    "derrian_flux_args.toml": set(),
    "chroma_lora.toml": set(),
    # dynamo_backend "no" is valid in a --config_file but refused by argparse on the GUI's command line
    "flux1D - adamw8bit fp8.json": {"dynamo_backend"},
    "flux1D - adamw8bit fp8__647295aa.json": {"dynamo_backend"},
}


def _ids(paths: list[Path]) -> list[str]:
    return [p.name for p in paths]


def _show_exit(path: str) -> int:
    from lora_compat.cli import main

    try:
        main(["show", "--format", "json", path])
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 0
    return 0


# What the command-line target cannot write, per input: argparse refuses dynamo_backend "no" (a choices miss that a
# --config_file never checks), as for the kohya_ss GUI's additional_parameters.
CMDLINE_LOSSES = {"flux1D - adamw8bit fp8.json": {"dynamo_backend"},
                  "flux1D - adamw8bit fp8__647295aa.json": {"dynamo_backend"}}


@pytest.mark.parametrize("src", SOURCES, ids=_ids(SOURCES))
@pytest.mark.parametrize("to", ["sd-scripts", "native", "command-line"])
def test_flux_toml_targets_read_back_with_the_same_canonical_options(tmp_path: Path, src: Path, to: str,
                                                                     capsys) -> None:
    cfg = load_config(str(src))
    assert cfg.family == FAMILY.get(src.name, "flux1") and not cfg.invalid
    out = str(tmp_path / ("out.sh" if to == "command-line" else "out.toml"))
    report = migrate_file(str(src), to, out)
    lost = {e.option for e in report.losses}
    assert lost == (CMDLINE_LOSSES.get(src.name, set()) if to == "command-line" else set()), \
        [(e.option, e.detail) for e in report.losses]
    assert _show_exit(out) == 0, capsys.readouterr().err
    back = load_config(out)
    assert back.family == cfg.family and not back.invalid and not back.unknown_keys
    a, b = migrated_options(cfg), migrated_options(back)
    if to == "command-line":   # a false store_true flag is not given: the same setting (argparse's default)
        a = on_command_line({k: v for k, v in a.items() if k not in lost})
    assert b == a
    assert migrated_datasets(back) == migrated_datasets(cfg)
    if to == "native":   # native -> native is identical, FLUX included
        assert render(back, "native", out)[0][out] == Path(out).read_text(encoding="utf-8")


@pytest.mark.parametrize("src", SOURCES, ids=_ids(SOURCES))
def test_flux_kohya_gui_target_reads_back_with_the_same_effective_options(tmp_path: Path, src: Path,
                                                                          capsys) -> None:
    cfg = load_config(str(src))
    out = str(tmp_path / "gui.json")
    report = migrate_file(str(src), "kohya-gui", out)
    lost = {e.option.split(".")[0] for e in report.losses}
    assert lost == GUI_LOSSES[src.name], [(e.option, e.detail) for e in report.losses]
    assert _show_exit(out) == 0, capsys.readouterr().err
    back = load_config(out)
    assert (back.dialect, back.family) == ("kohya-gui", cfg.family) and not back.invalid
    a, b = migrated_effective(cfg), migrated_effective(back)
    assert {k: (a[k], b.get(k)) for k in a if a[k] != b.get(k) and k not in lost} == {}
    gui = json.loads(Path(out).read_text(encoding="utf-8"))
    assert gui["flux1_checkbox"] is True and gui["LoRA_type"] == "Flux1" and gui["sdxl"] is False
    # and the GUI file migrates on to sd-scripts with the same canonical options it read as
    again = str(tmp_path / "again.toml")
    migrate_file(out, "sd-scripts", again)
    assert migrated_options(load_config(again)) == migrated_options(back)


def _gui(tmp_path: Path, text: str, name: str = "c.toml") -> tuple[dict, dict]:
    src = tmp_path / name
    src.write_text(text, encoding="utf-8")
    report = migrate_file(str(src), "kohya-gui", str(tmp_path / "gui.json"), force=True)
    entries: dict = {}
    for e in report.entries:   # an option with several lines (text_encoder_lr -> two GUI fields): the last
        entries[e.option] = e
    details = " | ".join(e.detail or "" for e in report.entries)
    entries["(all details)"] = details
    return json.loads((tmp_path / "gui.json").read_text(encoding="utf-8")), entries


HEAD = '# lora-compat: script = "flux_train_network.py"\nnetwork_module = "networks.lora_flux"\nnetwork_dim = 4\n'


def test_gui_flux_fields_are_the_ones_lora_gui_reads(tmp_path: Path) -> None:
    gui, entries = _gui(tmp_path, HEAD + 'cache_text_encoder_outputs = true\ntext_encoder_lr = [1e-5, 5e-6]\n'
                        'network_args = ["img_attn_dim=8", "in_dims=[4,0,0,0,4]", "split_qkv=True", '
                        '"ggpo_sigma=0.03", "ggpo_beta=0.01"]\n')
    assert gui["flux1_checkbox"] is True and gui["LoRA_type"] == "Flux1"
    assert gui["flux1_cache_text_encoder_outputs"] is True and gui["sdxl_cache_text_encoder_outputs"] is False
    assert (gui["text_encoder_lr"], gui["t5xxl_lr"]) == (1e-5, 5e-6)
    assert (gui["img_attn_dim"], gui["in_dims"], gui["split_qkv"]) == ("8", "[4,0,0,0,4]", True)
    assert (gui["train_lora_ggpo"], gui["ggpo_sigma"], gui["ggpo_beta"]) == (True, 0.03, 0.01)
    assert gui["additional_parameters"] == ""
    assert "flux1_checkbox" in entries["family"].detail and entries["family"].kind == "derived"
    assert "t5xxl_lr 5e-06 (T5-XXL)" in entries["(all details)"]


def test_gui_split_mode_box_also_forces_train_blocks_single(tmp_path: Path) -> None:
    # train_blocks=single + split_mode: the box (it passes both)
    gui, entries = _gui(tmp_path, HEAD + 'split_mode = true\nnetwork_args = ["train_blocks=single"]\n')
    assert gui["split_mode"] is True and gui["additional_parameters"] == ""
    assert entries["network_args.train_blocks"].target_key == "split_mode"
    # split_mode alone: the box would add train_blocks=single, so --split_mode goes on the command line
    gui, entries = _gui(tmp_path, HEAD + "split_mode = true\n")
    assert gui["split_mode"] is False and gui["additional_parameters"] == "--split_mode"
    back = load_config(str(tmp_path / "gui.json"))
    assert back.get("split_mode") is True and "network_args" not in back.options
    # train_blocks=double (or single without split_mode): no GUI field passes it, and the report says so
    gui, entries = _gui(tmp_path, HEAD + 'network_args = ["train_blocks=double", "verbose=True"]\n')
    assert entries["network_args.train_blocks"].loss and "split_mode" in entries["network_args.train_blocks"].detail
    assert entries["network_args.verbose"].loss


def test_gui_lowercase_true_stays_off(tmp_path: Path) -> None:
    # networks.lora_flux reads `split_qkv == "True"`: "true" is off, and a checked box would turn it on
    gui, entries = _gui(tmp_path, HEAD + 'network_args = ["split_qkv=true", "train_t5xxl=1"]\n')
    assert gui["split_qkv"] is False and gui["train_t5xxl"] is False
    assert not entries["network_args.split_qkv"].loss and "only \"True\"" in entries["network_args.split_qkv"].detail


def test_gui_chroma_branch(tmp_path: Path) -> None:
    gui, entries = _gui(tmp_path, 'network_module = "networks.lora_flux"\nmodel_type = "chroma"\n'
                        'apply_t5_attn_mask = true\nguidance_scale = 0.0\nclip_l = "clip_l.safetensors"\n')
    assert (gui["model_type"], gui["apply_t5_attn_mask"], gui["guidance_scale"], gui["clip_l"]) == (
        "chroma", True, 0.0, "")
    assert "Chroma has no CLIP-L" in entries["clip_l"].detail and not entries["clip_l"].loss
    back = load_config(str(tmp_path / "gui.json"))
    assert back.family == "chroma" and back.get("guidance_scale") == 0.0


def test_gui_refuses_a_network_the_flux_gui_cannot_run(tmp_path: Path) -> None:
    # flux_train_network.py with networks.lora (sd-scripts refuses it at network creation): the GUI has no type
    _, entries = _gui(tmp_path, '# lora-compat: script = "flux_train_network.py"\nnetwork_module = '
                        '"networks.lora"\nae = "ae.safetensors"\n')
    assert entries["network_module"].loss and "Flux1" in entries["network_module"].detail


# ------------------------------------------------------------------ per-script defaults (modern-archs.md §5.5)
def test_t5_token_length_default_is_not_the_guis(tmp_path: Path) -> None:
    # sd-scripts: None -> 256 for schnell, 512 for dev; the GUI's field defaults to 512. A config that leaves it
    # unset must not become 512 in the GUI file (schnell would change): the GUI's "not passed" value is 0.
    gui, entries = _gui(tmp_path, HEAD + 'pretrained_model_name_or_path = "flux1-schnell.safetensors"\n')
    assert gui["t5xxl_max_token_length"] == 0
    e = entries["t5xxl_max_token_length"]          # the report names the explicit default and why
    assert (e.kind, e.target_key, e.value) == ("default", "t5xxl_max_token_length", 0)
    assert "the GUI's own default 512 would change the setting" in e.detail
    back = load_config(str(tmp_path / "gui.json"))
    assert back.effective("t5xxl_max_token_length") is None
    # the other way: a GUI preset without the key takes the GUI's 512, and the TOML target writes it out
    preset = {"LoRA_type": "Flux1", "flux1_checkbox": True, "network_dim": 4, "ae": "ae.safetensors"}
    src = tmp_path / "partial.json"
    src.write_text(json.dumps(preset), encoding="utf-8")
    report = migrate_file(str(src), "sd-scripts", str(tmp_path / "s.toml"))
    back = load_config(str(tmp_path / "s.toml"))
    assert back.get("t5xxl_max_token_length") == 512 and back.get("guidance_scale") == 3.5
    e = next(e for e in report.entries if e.option == "t5xxl_max_token_length")
    assert e.kind == "default" and e.target_key == "t5xxl_max_token_length"


def test_flux_defaults_are_written_where_the_gui_drops_zero(tmp_path: Path) -> None:
    # guidance_scale 0.0 on FLUX.1 dev: the GUI drops a 0 (its TOML filter), so it goes on the command line
    gui, entries = _gui(tmp_path, HEAD + "guidance_scale = 0.0\n")
    assert gui["guidance_scale"] == 0 and gui["additional_parameters"] == "--guidance_scale=0.0"
    assert entries["guidance_scale"].target_key == "additional_parameters"
    assert load_config(str(tmp_path / "gui.json")).effective("guidance_scale") == 0.0


def test_sd3_is_still_refused_by_name(tmp_path: Path) -> None:
    from lora_compat.errors import UnsupportedFamilyError

    src = tmp_path / "sd3.sh"
    src.write_text("python sd3_train_network.py --network_dim 4\n", encoding="utf-8")
    with pytest.raises(UnsupportedFamilyError, match=r"SD3/SD3\.5"):
        migrate_file(str(src), "native", str(tmp_path / "o.toml"))
    assert not (tmp_path / "o.toml").exists()


def test_flux_report_json_names_the_family(tmp_path: Path) -> None:
    cfg = load_config(str(FIXTURES / "flux" / "flux_lora.toml"))
    files, report = render(cfg, "native", str(tmp_path / "n.toml"))
    write_atomically(files)
    data = report.to_json()
    arch = next(e for e in data["entries"] if e["target_key"] == "model.arch")
    assert arch["option"] == "family" and arch["value"] == "flux1" and "FLUX.1" in arch["detail"]


def test_gui_fields_the_flux_gui_does_not_pass_go_on_the_command_line(tmp_path: Path) -> None:
    # max_token_length: lora_gui.py passes it only without flux1_checkbox; weighting_scheme only with sd3_checkbox
    gui, _ = _gui(tmp_path, HEAD + 'max_token_length = 225\nweighting_scheme = "logit_normal"\n')
    assert gui["max_token_length"] == 75
    assert gui["additional_parameters"] == "--max_token_length=225 --weighting_scheme=logit_normal"
    back = load_config(str(tmp_path / "gui.json"))
    assert (back.get("max_token_length"), back.get("weighting_scheme")) == (225, "logit_normal")


@pytest.mark.parametrize("preset", [
    {"LoRA_type": "Flux1 OFT", "flux1_checkbox": True, "enable_all_linear": True, "network_dim": 64},
    {"LoRA_type": "LyCORIS/LoKr", "flux1_checkbox": True, "factor": 8, "network_dim": 100000},
    {"LoRA_type": "Flux1", "flux1_checkbox": True, "model_type": "chroma", "t5xxl": "t5.safetensors",
     "split_mode": True, "train_t5xxl": True, "t5xxl_lr": 2e-5, "text_encoder_lr": 1e-5, "unet_lr": 1e-4},
], ids=["flux1-oft", "lycoris-lokr", "chroma-split-mode-t5"])
@pytest.mark.parametrize("to", ["native", "sd-scripts", "kohya-gui", "command-line"])
def test_gui_network_types_round_trip(tmp_path: Path, preset: dict, to: str) -> None:
    src = tmp_path / "preset.json"
    src.write_text(json.dumps(preset), encoding="utf-8")
    cfg = load_config(str(src))
    out = str(tmp_path / {"kohya-gui": "out.json", "command-line": "out.sh"}.get(to, "out.toml"))
    report = migrate_file(str(src), to, out)
    # dynamo_backend "no" (the GUI's default, read into the canonical options) is refused by argparse on the GUI's
    # command line: the known loss of every GUI -> GUI migration, SD included (GUI_LOSSES above)
    lost = {e.option for e in report.losses}
    assert lost <= {"dynamo_backend"} and (to in ("kohya-gui", "command-line") or not lost), \
        [(e.option, e.detail) for e in report.losses]
    back = load_config(out)
    assert back.family == cfg.family and not back.invalid
    if to == "kohya-gui":
        a, b = migrated_effective(cfg), migrated_effective(back)
        assert {k: (a[k], b.get(k)) for k in a if a[k] != b.get(k) and k not in lost} == {}
        assert json.loads(Path(out).read_text(encoding="utf-8"))["LoRA_type"] == preset["LoRA_type"]
    else:
        a = {k: v for k, v in migrated_options(cfg).items() if k not in lost}
        assert migrated_options(back) == (on_command_line(a) if to == "command-line" else a)


def test_gui_flux_only_fields_are_not_silently_dropped_for_other_families(tmp_path: Path) -> None:
    # SDXL: the GUI's only "to disk" box is flux1_cache_text_encoder_outputs_to_disk, passed with flux1_checkbox only
    gui, entries = _gui(tmp_path, 'network_module = "networks.lora"\n# lora-compat: script = "sdxl_train_network.py"'
                        '\ncache_text_encoder_outputs = true\ncache_text_encoder_outputs_to_disk = true\n')
    assert entries["cache_text_encoder_outputs_to_disk"].target_key == "additional_parameters"
    assert gui["flux1_checkbox"] is False and gui["flux1_cache_text_encoder_outputs_to_disk"] is False
    assert "--cache_text_encoder_outputs_to_disk" in gui["additional_parameters"].split()
    back = load_config(str(tmp_path / "gui.json"))
    assert back.family == "sdxl" and back.get("cache_text_encoder_outputs_to_disk") is True
