"""The model family of a config: decided once in the spine from what each dialect says, named by show/lint,
refused by migrate/plan/train when unsupported (never an SD1 plan for a FLUX.1 preset)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lora_compat.cli import main
from lora_compat.config.family import decide_family, require_family
from lora_compat.config.load import load_config
from lora_compat.errors import UnsupportedFamilyError, UserError
from tests.test_arch_families import FLUX_DEV, SDXL_SGM, write_safetensors

from shared_data import CORPUS, requires_corpus

FLUX_PRESET = CORPUS / "kohya_ss" / "flux1D - adamw8bit fp8.json"


def load(path: Path, text: str | dict, **kw):
    path.write_text(text if isinstance(text, str) else json.dumps(text), encoding="utf-8")
    return load_config(str(path), resolve_dataset=False, **kw)


def codes(cfg) -> list[str]:
    from lora_compat.config.notes import NOTE_CODES

    found = [n.code for n in cfg.notes if n.code.startswith("family-")]
    assert all(c in NOTE_CODES for c in found), found   # every note a reader writes is explainable
    return found


# --- command lines: the script decides --------------------------------------------------------------------------

@pytest.mark.parametrize("script, extra, family", [
    ("train_network.py", "", "sd1"),
    ("train_network.py", "--v2", "sd2"),
    ("sdxl_train_network.py", "", "sdxl"),
    ("flux_train_network.py", "--ae ae.sft --t5xxl t5.safetensors --guidance_scale 1.0 --apply_t5_attn_mask", "flux1"),
    ("flux_train_network.py", "--model_type chroma --t5xxl t5.safetensors", "chroma"),
    ("sd3_train_network.py", "--clip_g g.safetensors", "sd3"),
    ("lumina_train_network.py", "--gemma2 g.safetensors", "lumina2"),
    ("hunyuan_image_train_network.py", "--byt5 b.safetensors", "hunyuan_image"),
    ("anima_train_network.py", "--qwen3 q.safetensors", "anima"),
])
def test_command_line_scripts(tmp_path: Path, script: str, extra: str, family: str) -> None:
    text = (f"#!/bin/bash\n# launcher\naccelerate launch {script} \\\n  --pretrained_model_name_or_path=m "
            f"--network_dim 8 {extra}\n")
    cfg = load(tmp_path / "run.sh", text)
    assert cfg.family == family
    assert cfg.family_source.startswith(f"script {script} (command line line 3)"), cfg.family_source
    assert cfg.family_origin.line == 3
    assert cfg.get("network_dim") == 8
    if extra:   # options train_network.py does not know are kept, not refused
        kept = {u.key for u in cfg.unknown_keys} | set(cfg.options)
        assert {w[2:] for w in extra.split() if w.startswith("--")} <= kept
    assert not codes(cfg)


def test_unmodelled_options_of_a_family_script(tmp_path: Path) -> None:
    cfg = load(tmp_path / "r.sh", "python sd3_train_network.py --clip_g=g.sft --t5xxl_max_token_length 512 "
                                  "--apply_lg_attn_mask --network_dim 4 --text_encoder_lr 1e-5 2e-5\n")
    unknown = {u.key: u.value for u in cfg.unknown_keys}
    assert unknown == {"clip_g": "g.sft", "t5xxl_max_token_length": "512", "apply_lg_attn_mask": True}
    assert "sd3_train_network.py" in cfg.unknown_keys[0].reason
    assert cfg.get("text_encoder_lr") == [1e-5, 2e-5]
    # flux_train_network.py's argument space is modelled: its options are canonical, typed as its argparse does
    cfg = load(tmp_path / "f.sh", "python flux_train_network.py --ae=ae.sft --t5xxl_max_token_length 512 "
                                  "--apply_t5_attn_mask --network_dim 4 --text_encoder_lr 1e-5 2e-5\n")
    assert not cfg.unknown_keys
    assert (cfg.get("ae"), cfg.get("t5xxl_max_token_length"), cfg.get("apply_t5_attn_mask")) == ("ae.sft", 512, True)
    # an SD script stays strict: argparse refuses what it does not know (an invalid value: show marks it, exit 1)
    strict = load(tmp_path / "s.sh", "python train_network.py --ae ae.sft\n")
    assert [i.reason for i in strict.invalid] == ["sd-scripts would refuse this command line: unrecognized "
                                                  "arguments: --ae ae.sft"]


def test_issue_minimal_sdxl_command_line(tmp_path: Path) -> None:
    text = ("accelerate launch sdxl_train_network.py --pretrained_model_name_or_path=a.safetensors "
            "--dataset_config=ds.toml --network_module=networks.lora --learning_rate=1e-4\n")
    cfg = load(tmp_path / "cmd.sh", text)
    assert (cfg.family, cfg.arch(), cfg.is_sdxl) == ("sdxl", "sdxl", True)
    assert cfg.family_source == "script sdxl_train_network.py (command line line 1)"


def test_pasted_text_with_a_family_script_is_a_command_line(tmp_path: Path) -> None:
    cfg = load(tmp_path / "notes.txt", "run this:\npython sd-scripts/flux_train_network.py --network_dim 4\n")
    assert (cfg.dialect, cfg.family) == ("command-line", "flux1")


# --- sd-scripts TOML: no script, so network_module, family-only options, then the base model ----------------------

@pytest.mark.parametrize("body, family, source", [
    ('network_module = "networks.lora_flux"\n', "flux1", "network_module networks.lora_flux (line 1)"),
    ('network_module = "networks.lora_flux"\nmodel_type = "chroma"\n', "chroma",
     "model_type chroma (line 2); network_module networks.lora_flux"),
    ('ae = "ae.sft"\nt5xxl = "t5.safetensors"\nguidance_scale = 1.0\n', "flux1",
     "option ae (line 1) (FLUX.1, Chroma, Lumina-Image 2.0 only); option t5xxl (line 2) (FLUX.1, Chroma, SD3/SD3.5 "
     "only) (FLUX.1: flux_train_network.py without model_type chroma)"),
    ('clip_l = "l.safetensors"\nclip_g = "g.safetensors"\n', "sd3", "option clip_g (line 2)"),
    ('network_module = "networks.lora_sd3"\n', "sd3", "network_module networks.lora_sd3"),
    ('network_module = "networks.lora_lumina"\n', "lumina2", "network_module"),
    ('network_module = "networks.lora_hunyuan_image"\n', "hunyuan_image", "network_module"),
    ('network_module = "networks.lora_anima"\n', "anima", "network_module"),
    ('network_module = "networks.lora"\n', "sd1", "network_module networks.lora (line 1) (SD1.x: train_network"),
    ('network_module = "networks.lora"\nv2 = true\n', "sd2", "v2 = true (line 2)"),
    ('# lora-compat: script = "flux_train_network.py"\nnetwork_dim = 4\n', "flux1",
     "script flux_train_network.py named in a comment (line 1)"),
    ('# lora-compat: script = "sdxl_train_network.py"\nnetwork_dim = 4\n', "sdxl", "script sdxl_train_network.py"),
    ('network_dim = 4\n', "sd1", "default: nothing in the config names a model family"),
])
def test_sd_scripts_toml(tmp_path: Path, body: str, family: str, source: str) -> None:
    cfg = load(tmp_path / "c.toml", body + 'output_dir = "out"\n')
    assert cfg.dialect == "sd-scripts-toml"
    assert cfg.family == family and cfg.family_source.startswith(source), cfg.family_source
    assert not codes(cfg)


def test_options_of_two_families_are_ambiguous(tmp_path: Path) -> None:
    cfg = load(tmp_path / "c.toml", 't5xxl = "t5.safetensors"\nnetwork_dim = 4\n')
    assert cfg.family == "flux1" and codes(cfg) == ["family-ambiguous"]
    assert "SD3/SD3.5" in cfg.notes[-1].message


# --- kohya_ss GUI: the model checkboxes pick the script ------------------------------------------------------------

GUI = {"LoRA_type": "Standard", "network_dim": 8, "max_resolution": "512,512", "learning_rate": 1e-4,
       "pretrained_model_name_or_path": "/m/base.safetensors"}


@pytest.mark.parametrize("keys, family, source", [
    ({}, "sd1", "kohya_ss GUI: no model checkbox set"),
    ({"v2": True}, "sd2", "kohya_ss GUI: no model checkbox set (sdxl, flux1_checkbox ...), which runs "
                          "train_network.py with v2"),
    ({"sdxl": True}, "sdxl", "kohya_ss GUI sdxl = true (line"),
    ({"flux1_checkbox": True, "LoRA_type": "Flux1"}, "flux1", "kohya_ss GUI flux1_checkbox = true"),
    ({"flux1_checkbox": True, "LoRA_type": "Flux1", "model_type": "chroma"}, "chroma", "kohya_ss GUI flux1_checkbox"),
    ({"sd3_checkbox": True}, "sd3", "kohya_ss GUI sd3_checkbox = true"),
    # Standard / Kohya LoCon become networks.lora_sd3 with the SD3 checkbox (lora_gui.py): no false conflict
    ({"sd3_checkbox": True, "LoRA_type": "Kohya LoCon", "conv_dim": 4}, "sd3", "kohya_ss GUI sd3_checkbox"),
    ({"hunyuan_image_checkbox": True, "LoRA_type": "HunyuanImage-2.1"}, "hunyuan_image", "kohya_ss GUI hunyuan"),
    ({"anima_checkbox": True, "LoRA_type": "Anima"}, "anima", "kohya_ss GUI anima_checkbox"),
    ({"lumina_checkbox": True, "LoRA_type": "Lumina"}, "lumina2", "kohya_ss GUI lumina_checkbox"),
    # the GUI's order: sdxl first, then flux1 (lora_gui.py)
    ({"sdxl": True, "flux1_checkbox": True}, "sdxl", "kohya_ss GUI sdxl = true"),
    # every GUI field is state: a FLUX field of an SD preset names nothing
    ({"guidance_scale": 3.5, "ae": "", "t5xxl": "", "timestep_sampling": "sigma", "flux1_checkbox": False}, "sd1",
     "kohya_ss GUI: no model checkbox set"),
])
def test_kohya_gui_checkboxes(tmp_path: Path, keys: dict, family: str, source: str) -> None:
    cfg = load(tmp_path / "gui.json", {**GUI, **keys})
    assert cfg.dialect == "kohya-gui"
    assert cfg.family == family and cfg.family_source.startswith(source), cfg.family_source
    assert not codes(cfg), cfg.notes


def test_kohya_gui_sd3_checkbox_standard_type_conflicts_only_when_the_module_disagrees(tmp_path: Path) -> None:
    cfg = load(tmp_path / "gui.json", {**GUI, "flux1_checkbox": False, "LoRA_type": "Flux1"})
    assert cfg.family == "sd1" and codes(cfg) == ["family-conflict"]
    assert "network_module networks.lora_flux" in cfg.notes[-1].message and "the script decides" in \
        cfg.notes[-1].message


@requires_corpus
@pytest.mark.parametrize("name", ["flux1D - adamw8bit fp8.json", "flux1D - adamw8bit fp8__647295aa.json"])
def test_corpus_flux_presets_are_flux1(name: str) -> None:
    cfg = load_config(str(CORPUS / "kohya_ss" / name), resolve_dataset=False)
    assert cfg.family == "flux1" and cfg.family_source.startswith("kohya_ss GUI flux1_checkbox = true (line 4")
    assert not codes(cfg)
    with pytest.raises(UnsupportedFamilyError, match=r"FLUX\.1 \(flux_train_network\.py\) is not an SD1/SD2/SDXL"):
        cfg.arch()


# --- Derrian ---------------------------------------------------------------------------------------------------

DERRIAN = ('[[subsets]]\nname = "s"\nimage_dir = "img/10_cat"\nnum_repeats = 10\n\n[train_mode]\ntrain_mode = "lora"'
           '\n\n[general_args.args]\npretrained_model_name_or_path = "m.safetensors"\n{general}\n'
           '[network_args.args]\nnetwork_dim = 16\n{more}')


@pytest.mark.parametrize("general, more, family, source", [
    ("", "", "sd1", "Derrian UI: no sdxl flag"),
    ("sdxl = true\n", "", "sdxl", "Derrian general_args.args.sdxl = true (line"),
    ("", '\n[flux_args.args]\nae = "ae.sft"\nguidance_scale = 1.0\n', "flux1", "Derrian [flux_args] section"),
    ("", '\n[anima_args.args]\nqwen3 = "q.safetensors"\n', "anima", "Derrian [anima_args] section"),
])
def test_derrian_toml(tmp_path: Path, general: str, more: str, family: str, source: str) -> None:
    cfg = load(tmp_path / "d.toml", DERRIAN.format(general=general, more=more))
    assert cfg.dialect == "derrian-toml"
    assert cfg.family == family and cfg.family_source.startswith(source), cfg.family_source
    assert not codes(cfg), cfg.notes


def test_derrian_sdxl_and_flux_conflict(tmp_path: Path) -> None:
    # Derrian's backend answers "Invalid Train Parameters" for both: named, never a silent pick
    cfg = load(tmp_path / "d.toml", DERRIAN.format(general="sdxl = true\n",
                                                  more='\n[flux_args.args]\nguidance_scale = 1.0\n'))
    assert cfg.family == "sdxl" and "family-conflict" in codes(cfg)


def test_derrian_argstore_is_train_network(tmp_path: Path) -> None:
    cfg = load(tmp_path / "a.json", {"base_model": "/m.safetensors", "img_folder": "/x", "output_folder": "/o",
                                     "net_dim": 32, "alpha": 16, "v2": True, "save_json_only": False,
                                     "list_of_json_to_run": None})
    assert cfg.dialect == "derrian-argstore" and cfg.family == "sd2"


def test_native_arch(tmp_path: Path) -> None:
    cfg = load(tmp_path / "n.toml", 'format = "lora-compat/1"\n[model]\narch = "sdxl"\n'
                                    'pretrained_model_name_or_path = "m"\n[network]\nkind = "lora"\nr = 8\n')
    assert cfg.dialect == "native" and cfg.family == "sdxl" and cfg.family_source.startswith('model.arch = "sdxl"')


def test_dataset_config_has_no_family(tmp_path: Path) -> None:
    cfg = load(tmp_path / "ds.toml", '[general]\nresolution = 512\n[[datasets]]\n[[datasets.subsets]]\n'
                                     'image_dir = "x"\n')
    assert cfg.family is None and cfg.arch() == "sd1" and cfg.is_sd_family
    require_family(cfg, "plan")   # the stage decides what a dataset config means


# --- the base model: content beats the name, explicit markers beat both --------------------------------------------

def _sdxl_folder(root: Path) -> Path:
    root.mkdir()
    (root / "model_index.json").write_text(json.dumps({"_class_name": "StableDiffusionXLPipeline"}))
    return root


def test_toml_on_an_sdxl_folder_takes_the_family_from_the_model(tmp_path: Path) -> None:
    # issue #10 item 10: an sd-scripts --config_file TOML trained on an SDXL base folder
    base = _sdxl_folder(tmp_path / "my_model")
    cfg = load(tmp_path / "c.toml", f'pretrained_model_name_or_path = "{base}"\nnetwork_module = "networks.lora"\n')
    assert (cfg.family, cfg.arch(), cfg.is_sdxl) == ("sdxl", "sdxl", True)
    assert cfg.family_source.startswith(f"base model {base} is SDXL (model_index.json: StableDiffusionXLPipeline)")
    assert not codes(cfg)
    # a relative path is also found next to the config
    cfg = load(tmp_path / "c2.toml", 'pretrained_model_name_or_path = "my_model"\n')
    assert cfg.family == "sdxl"


def test_sd2_folder_without_v2_is_sd2_with_a_note(tmp_path: Path) -> None:
    base = tmp_path / "sd21"
    base.mkdir()
    (base / "model_index.json").write_text(json.dumps({"_class_name": "StableDiffusionPipeline"}))
    (base / "unet").mkdir()
    (base / "unet" / "config.json").write_text(json.dumps({"cross_attention_dim": 1024}))
    cfg = load(tmp_path / "c.toml", f'pretrained_model_name_or_path = "{base}"\n')
    assert cfg.family == "sd2" and codes(cfg) == ["family-switch-missing"]
    assert "set v2 = true" in cfg.notes[-1].message


def test_a_narrow_sd2_test_model_agrees_with_v2(tmp_path: Path) -> None:
    # the shape of lora_compat.train.tiny's SD2 folder: widths of 32, linear projections, OpenCLIP's gelu
    base = tmp_path / "tiny_sd2"
    for rel, data in {"model_index.json": {"_class_name": "StableDiffusionPipeline"},
                      "unet/config.json": {"cross_attention_dim": 32, "use_linear_projection": True},
                      "text_encoder/config.json": {"hidden_size": 32, "hidden_act": "gelu"}}.items():
        (base / rel).parent.mkdir(parents=True, exist_ok=True)
        (base / rel).write_text(json.dumps(data))
    cfg = load(tmp_path / "r.sh", f"python train_network.py --v2 --pretrained_model_name_or_path {base}\n")
    assert cfg.family == "sd2" and not codes(cfg)
    require_family(cfg, "train")


def test_explicit_script_wins_over_the_model_and_says_so(tmp_path: Path) -> None:
    base = _sdxl_folder(tmp_path / "xl")
    cfg = load(tmp_path / "r.sh", f"python train_network.py --pretrained_model_name_or_path {base}\n")
    assert cfg.family == "sd1" and codes(cfg) == ["family-base-model-conflict"]
    assert "is SDXL" in cfg.notes[-1].message and "trains SD1.x" in cfg.notes[-1].message
    with pytest.raises(UserError, match=r"sd-scripts would load it as SD1\.x and fail"):
        require_family(cfg, "train")   # before loading gigabytes
    require_family(cfg, "plan")        # plan still shows what the config asks for


def test_content_beats_the_name(tmp_path: Path) -> None:
    model = tmp_path / "sdxl_finetune.safetensors"       # named like SDXL, holds FLUX.1 dev
    write_safetensors(model, {k: [2, 2] for k in FLUX_DEV})
    cfg = load(tmp_path / "c.toml", f'pretrained_model_name_or_path = "{model}"\n')
    assert cfg.family == "flux1" and cfg.family_source.startswith(f"base model {model} is FLUX.1 dev")
    assert codes(cfg) == ["family-base-model-name"]


def test_a_flux_file_under_an_sd_module_is_a_conflict(tmp_path: Path) -> None:
    model = tmp_path / "base.safetensors"
    write_safetensors(model, {k: [2, 2] for k in FLUX_DEV})
    cfg = load(tmp_path / "c.toml", f'pretrained_model_name_or_path = "{model}"\nnetwork_module = "networks.lora"\n')
    assert cfg.family == "sd1" and codes(cfg) == ["family-base-model-conflict"]


def test_name_hints(tmp_path: Path) -> None:
    cfg = load(tmp_path / "c.toml", 'pretrained_model_name_or_path = "/models/flux1-schnell.safetensors"\n')
    assert cfg.family == "flux1"
    assert cfg.family_source == "base model name 'flux1-schnell.safetensors' suggests FLUX.1"
    # the name is only a hint: an explicit marker wins and the mismatch is a note
    cfg = load(tmp_path / "g.json", {**GUI, "pretrained_model_name_or_path": "/m/sd_xl_base_1.0.safetensors"})
    assert cfg.family == "sd1" and codes(cfg) == ["family-base-model-name"]
    assert "suggests SDXL" in cfg.notes[-1].message


def test_train_redecides_with_base_model_and_set(tmp_path: Path) -> None:
    cfg = load(tmp_path / "c.toml", 'network_module = "networks.lora"\n')
    assert cfg.family == "sd1"
    decide_family(cfg, base_model="tiny:sdxl")
    assert cfg.family == "sdxl" and "tiny SDXL model" in cfg.family_source
    sdxl_file = tmp_path / "m.safetensors"
    write_safetensors(sdxl_file, {k: [2] for k in SDXL_SGM})
    decide_family(cfg, base_model=str(sdxl_file))
    assert cfg.family == "sdxl"
    gui = load(tmp_path / "g.json", GUI)
    decide_family(gui, overrides={"sdxl": True})
    assert gui.family == "sdxl" and gui.family_source.startswith("--set sdxl=true")


def test_the_sd_scripts_writer_names_the_family_script(tmp_path: Path) -> None:
    from lora_compat.migrate.sd_scripts import script_for

    base = _sdxl_folder(tmp_path / "xl")
    cfg = load(tmp_path / "c.toml", f'pretrained_model_name_or_path = "{base}"\n')
    assert script_for(cfg) == "sdxl_train_network.py"       # family from the base model, no sdxl flag
    cfg = load(tmp_path / "r.sh", "python train_network.py --v2 --network_dim 4\n")
    assert script_for(cfg) == "train_network.py"
    cfg = load(tmp_path / "f.sh", "python flux_train_network.py --network_dim 4\n")
    assert script_for(cfg) == "flux_train_network.py"       # once migrate supports FLUX.1, never train_network.py


def test_arch_never_lets_another_family_into_sd_code(tmp_path: Path) -> None:
    from lora_compat.plan import make_plan

    cfg = load(tmp_path / "r.sh", "python sd3_train_network.py --network_dim 4\n")
    assert not cfg.is_sd_family and not cfg.is_sdxl and not cfg.is_v2
    with pytest.raises(UnsupportedFamilyError, match=r"SD3/SD3\.5 \(sd3_train_network\.py\)"):
        cfg.arch()
    with pytest.raises(UnsupportedFamilyError):
        make_plan(cfg)


# --- the CLI: show names it, migrate/plan/train refuse it by name (exit 2, one line) ---------------------------------

def run(capsys, *argv: str) -> tuple[int, str, str]:
    """The console entry point as users run it: (exit code, stdout, stderr)."""
    code = 0
    try:
        main(list(argv))
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 0
    out = capsys.readouterr()
    return code, out.out, out.err


@requires_corpus
def test_show_json_names_flux1(tmp_path: Path, capsys) -> None:
    code, out, err = run(capsys, "show", "--format", "json", str(FLUX_PRESET))
    assert code == 0, err
    data = json.loads(out)
    assert (data["family"], data["family_name"]) == ("flux1", "FLUX.1")
    assert data["family_source"].startswith("kohya_ss GUI flux1_checkbox = true")
    code, out, err = run(capsys, "show", str(FLUX_PRESET))
    assert code == 0 and "family FLUX.1" in out and "not supported yet" not in out   # every stage handles it
    sd3 = tmp_path / "sd3.sh"
    sd3.write_text("python sd3_train_network.py --network_dim 4\n", encoding="utf-8")
    code, out, err = run(capsys, "show", str(sd3))
    assert "family SD3/SD3.5" in out and "not supported yet: migrate, plan, train refuse it" in out


@pytest.mark.parametrize("argv", [["migrate", "--to", "native", "-o", "{out}"],
                                  ["migrate", "--to", "sd-scripts", "-o", "{out}"],
                                  ["migrate", "--to", "kohya-gui", "-o", "{out}"], ["show", "--format", "toml"]])
def test_unsupported_family_is_refused_by_name(tmp_path: Path, capsys, argv: list[str]) -> None:
    out = tmp_path / "out.toml"
    sd3 = tmp_path / "sd3.sh"
    sd3.write_text("python sd3_train_network.py --network_dim 4\n", encoding="utf-8")
    args = [a.format(out=out) for a in argv]
    code, stdout, err = run(capsys, *args[:1], str(sd3), *args[1:])
    assert code == 2 and not stdout, (stdout, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    command = "migrate" if argv[0] == "show" else argv[0]   # show --format toml is the migrate writer
    assert f"SD3/SD3.5 (sd3_train_network.py) is not supported by `{command}` yet" in lines[0]
    assert not out.exists()


def test_show_and_plan_of_the_issue_command_line(tmp_path: Path, capsys) -> None:
    p = tmp_path / "cmd.sh"
    p.write_text("accelerate launch sdxl_train_network.py --pretrained_model_name_or_path=a.safetensors "
                 "--dataset_config=ds.toml --network_module=networks.lora --learning_rate=1e-4\n")
    (tmp_path / "ds.toml").write_text('[[datasets]]\n[[datasets.subsets]]\nimage_dir = "img"\n')
    code, out, err = run(capsys, "show", "--format", "json", str(p))
    assert code == 0, err
    assert json.loads(out)["family"] == "sdxl"
    code, out, err = run(capsys, "plan", "--format", "json", str(p))
    assert code == 0, err
    assert json.loads(out)["arch"] == "sdxl"
