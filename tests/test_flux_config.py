"""FLUX.1 configs through every reader: an sd-scripts --config_file TOML, a flux_train_network.py command line, a
Derrian UI TOML with [flux_args], and the kohya_ss GUI FLUX presets of the corpus (#13 items 2 and 5).

What each front-end really passed comes from its source (kohya_ss kohya_gui/lora_gui.py train_model and
class_flux1.py; Derrian main_ui_files/FluxUI.py and the backend's utils/validation.py; sd-scripts
flux_train_network.py setup_parser).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from lora_compat.config.load import load_config

from shared_data import CORPUS, requires_corpus


def load(path: Path, text: str):
    path.write_text(text, encoding="utf-8")
    return load_config(str(path))


def notes(cfg) -> dict[str, list]:
    out: dict[str, list] = {}
    for n in cfg.notes:
        out.setdefault(n.code, []).append(n)
    return out


FLUX_TOML = """\
# lora-compat: script = "flux_train_network.py"
pretrained_model_name_or_path = "/models/flux1-dev.safetensors"
clip_l = "/models/clip_l.safetensors"
t5xxl = "/models/t5xxl_fp16.safetensors"
ae = "/models/ae.safetensors"
network_module = "networks.lora_flux"
network_dim = 16
network_alpha = 16.0
network_args = ["train_blocks=single", "split_qkv=true"]
guidance_scale = 1.0
timestep_sampling = "shift"
discrete_flow_shift = 3.1582
model_prediction_type = "raw"
blocks_to_swap = 18
text_encoder_lr = [1e-5, 5e-6]
mem_eff_save = true
"""


def test_flux_sd_scripts_toml(tmp_path: Path) -> None:
    cfg = load(tmp_path / "flux.toml", FLUX_TOML)
    assert (cfg.dialect, cfg.family) == ("sd-scripts-toml", "flux1")
    assert cfg.family_source.startswith("script flux_train_network.py named in a comment")
    assert cfg.get("guidance_scale") == 1.0 and cfg.locate("guidance_scale").line == 10
    assert (cfg.get("timestep_sampling"), cfg.get("discrete_flow_shift"), cfg.get("blocks_to_swap")) == (
        "shift", 3.1582, 18)
    assert cfg.get("text_encoder_lr") == [1e-5, 5e-6]
    # defaults are flux_train_network.py's
    assert cfg.effective("sigmoid_scale") == 1.0 and cfg.effective("weighting_scheme") == "uniform"
    assert cfg.effective("t5xxl_max_token_length") is None and cfg.effective("model_type") == "flux"
    # a key only flux_train.py knows: sd-scripts' TOML reader keeps it silently, the LoRA script ignores it
    assert [u.key for u in cfg.unknown_keys] == ["mem_eff_save"]


def test_flux_toml_without_script_comment_is_decided_by_its_options(tmp_path: Path) -> None:
    cfg = load(tmp_path / "c.toml", 'ae = "ae.sft"\nt5xxl = "t5.sft"\nguidance_scale = 3.5\n'
                                     'network_module = "networks.lora_flux"\n')
    assert cfg.family == "flux1"
    cfg = load(tmp_path / "chroma.toml", 'network_module = "networks.lora_flux"\nmodel_type = "chroma"\n'
                                          'apply_t5_attn_mask = true\n')
    assert cfg.family == "chroma" and cfg.get("model_type") == "chroma"
    assert cfg.effective("discrete_flow_shift") == 3.0


def test_flux_command_line(tmp_path: Path) -> None:
    text = ("accelerate launch --num_cpu_threads_per_process 1 flux_train_network.py \\\n"
            "  --pretrained_model_name_or_path flux1-dev.safetensors --clip_l clip_l.safetensors \\\n"
            "  --t5xxl t5xxl_fp16.safetensors --ae ae.safetensors --cache_latents_to_disk \\\n"
            "  --network_module networks.lora_flux --network_dim 4 --network_train_unet_only \\\n"
            "  --cache_text_encoder_outputs --cache_text_encoder_outputs_to_disk --fp8_base \\\n"
            "  --guidance_scale 1.0 --timestep_sampling flux_shift --model_prediction_type raw \\\n"
            "  --split_mode --network_args \"train_double_block_indices=0,2-3\" in_dims=[4,0,0,0,4]\n")
    cfg = load(tmp_path / "train.sh", text)
    assert (cfg.dialect, cfg.family) == ("command-line", "flux1")
    assert not cfg.unknown_keys
    assert cfg.get("split_mode") is True and cfg.locate("split_mode").line == 7
    assert cfg.get("network_args") == ["train_double_block_indices=0,2-3", "in_dims=[4,0,0,0,4]"]
    assert cfg.get("cache_text_encoder_outputs") is True and cfg.get("fp8_base") is True
    # sd-scripts would refuse an option of another script's parser on the command line: an invalid value that
    # show marks (exit 1), not a refusal to read the file
    bad = load(tmp_path / "bad.sh", "python flux_train_network.py --network_dim 4 --mem_eff_save\n")
    assert [i.reason for i in bad.invalid] == ["sd-scripts would refuse this command line: unrecognized "
                                               "arguments: --mem_eff_save"]


DERRIAN_FLUX = """\
[[subsets]]
num_repeats = 10
image_dir = "/data/10_char"

[general_args.args]
pretrained_model_name_or_path = "/models/flux1-dev.safetensors"
mixed_precision = "bf16"
max_train_epochs = 10
cache_latents = true

[general_args.dataset_args]
resolution = 1024
batch_size = 1

[network_args.args]
network_dim = 16
network_alpha = 16.0

[network_args.args.network_args]
train_blocks = "single"
split_qkv = true

[optimizer_args.args]
optimizer_type = "AdamW8bit"
learning_rate = 0.0001

[saving_args.args]
output_dir = "/out"
output_name = "flux_lora"

[flux_args.args]
ae = "/models/ae.safetensors"
clip_l = "/models/clip_l.safetensors"
t5xxl = "/models/t5xxl_fp16.safetensors"
apply_t5_attn_mask = false
t5xxl_max_token_length = 512
discrete_flow_shift = false
split_mode = true
timestep_sampling = "sigma"
sigmoid_scale = false
weighting_scheme = "logit_normal"
logit_mean = 0.0
logit_std = 1.0
mode_scale = false
guidance_scale = 1.0
model_prediction_type = "raw"
"""


def test_derrian_flux_args_toml(tmp_path: Path) -> None:
    cfg = load(tmp_path / "derrian.toml", DERRIAN_FLUX)
    assert (cfg.dialect, cfg.era, cfg.family) == ("derrian-toml", "U2", "flux1")
    assert "[flux_args]" in cfg.family_source
    assert cfg.get("network_module") == "networks.lora_flux"
    assert (cfg.get("ae"), cfg.get("t5xxl"), cfg.get("clip_l")) == (
        "/models/ae.safetensors", "/models/t5xxl_fp16.safetensors", "/models/clip_l.safetensors")
    assert cfg.locate("guidance_scale").key == "flux_args.args.guidance_scale"
    assert (cfg.get("guidance_scale"), cfg.get("model_prediction_type"), cfg.get("weighting_scheme")) == (
        1.0, "raw", "logit_normal")
    assert cfg.get("t5xxl_max_token_length") == 512 and cfg.get("split_mode") is True
    assert cfg.get("network_args") == ["train_blocks=single", "split_qkv=True"]
    # false (a disabled input) and 0.0 are dropped by the backend: sd-scripts' defaults apply
    for name in ("discrete_flow_shift", "sigmoid_scale", "mode_scale", "logit_mean", "apply_t5_attn_mask"):
        assert name not in cfg.options, name
    assert cfg.effective("discrete_flow_shift") == 3.0 and cfg.effective("logit_mean") == 0.0
    found = notes(cfg)
    assert found["derrian-flux-shift-not-passed"][0].origin.key == "flux_args.args.discrete_flow_shift"
    assert "derrian-toml-not-lora" not in found
    # a disabled input (false) is not a user's zero: no "dropped" note for it
    assert not any(n.data.get("option") in ("sigmoid_scale", "mode_scale", "discrete_flow_shift")
                   for n in found.get("derrian-toml-falsy-dropped", []))


def test_derrian_flux_guidance_zero_loses_the_flux_module(tmp_path: Path) -> None:
    text = DERRIAN_FLUX.replace("guidance_scale = 1.0", "guidance_scale = 0.0")
    cfg = load(tmp_path / "derrian.toml", text)
    assert "guidance_scale" not in cfg.options and cfg.effective("guidance_scale") == 3.5
    assert cfg.get("network_module") == "networks.lora"   # the backend's choice once guidance_scale is gone
    assert "derrian-flux-guidance-zero" in notes(cfg)


def test_derrian_flux_args_do_not_override_a_lycoris_module(tmp_path: Path) -> None:
    text = DERRIAN_FLUX.replace('train_blocks = "single"', 'algo = "locon"')
    cfg = load(tmp_path / "derrian.toml", text)
    assert cfg.get("network_module") == "lycoris.kohya"


# ------------------------------------------------------------------------------------------- kohya_ss GUI
@requires_corpus
@pytest.mark.parametrize("name", ["flux1D - adamw8bit fp8.json", "flux1D - adamw8bit fp8__647295aa.json"])
def test_corpus_flux_presets(name: str) -> None:
    cfg = load_config(str(CORPUS / "kohya_ss" / name))
    assert (cfg.dialect, cfg.family) == ("kohya-gui", "flux1")
    assert not cfg.invalid and not cfg.unknown_keys
    for opt in ("ae", "clip_l", "t5xxl", "discrete_flow_shift", "model_prediction_type", "timestep_sampling",
                "guidance_scale", "t5xxl_max_token_length", "cache_text_encoder_outputs",
                "cache_text_encoder_outputs_to_disk"):
        assert opt in cfg.options, opt
    assert cfg.get("network_module") == "networks.lora_flux"
    assert isinstance(cfg.get("guidance_scale"), float) and isinstance(cfg.get("t5xxl_max_token_length"), int)
    assert "max_token_length" not in cfg.options          # the GUI never passes it with flux1_checkbox
    assert "kohya-gui-other-architecture" not in notes(cfg)
    front = {f.key: f.reason for f in cfg.frontend_only}
    assert "split_mode" not in front and "train_blocks" in front


def test_kohya_gui_flux_fields(tmp_path: Path) -> None:
    import json

    base = json.loads((CORPUS / "kohya_ss" / "flux1D - adamw8bit fp8.json").read_text()) if CORPUS.is_dir() else None
    if base is None:
        pytest.skip("../shared/corpus not found beside this clone")
    data = dict(base, guidance_scale=0, train_blocks="double", mem_eff_save=True, single_blocks_to_swap=4,
                blocks_to_swap=0, split_qkv=True, train_t5xxl=True, t5xxl_lr=5e-6, text_encoder_lr=1e-5)
    cfg = load(tmp_path / "gui.json", json.dumps(data, indent=2))
    found = notes(cfg)
    # 0 is dropped by the GUI's TOML filter ("0.0 in [False]"): sd-scripts trains with 3.5
    assert "guidance_scale" not in cfg.options and cfg.effective("guidance_scale") == 3.5
    assert any(n.data.get("option") == "guidance_scale" for n in found["kohya-gui-zero-dropped"])
    assert "kohya-gui-flux-train-blocks-ignored" in found
    assert "blocks_to_swap" not in cfg.options
    front = {f.key for f in cfg.frontend_only}
    assert {"mem_eff_save", "single_blocks_to_swap"} <= front
    assert cfg.get("network_args") == ["split_qkv=True", "train_t5xxl=True"]
    assert cfg.get("text_encoder_lr") == [1e-5, 5e-6]
    # Chroma: model_type passed, clip_l not, the T5 mask forced, guidance 0.0 re-emitted (2026 GUI)
    chroma = dict(data, model_type="chroma", guidance_scale=0, apply_t5_attn_mask=False)
    cfg = load(tmp_path / "chroma.json", json.dumps(chroma, indent=2))
    assert cfg.family == "chroma"
    assert (cfg.get("model_type"), cfg.get("apply_t5_attn_mask"), cfg.get("guidance_scale")) == ("chroma", True, 0.0)
    assert "clip_l" not in cfg.options and "kohya-gui-chroma-t5-mask" in notes(cfg)
    # without flux1_checkbox the FLUX fields are GUI state only
    sd = dict(data, flux1_checkbox=False, LoRA_type="Standard")
    cfg = load(tmp_path / "sd.json", json.dumps(sd, indent=2))
    assert cfg.family == "sd1" and "ae" not in cfg.options and "guidance_scale" not in cfg.options
