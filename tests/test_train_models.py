"""Base-model loading: packaged single-file configs carry the real SD1/SD2/SDXL topology; clear errors."""

from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")

from lora_compat.errors import UserError  # noqa: E402
from lora_compat.train.models import MODELS_DATA, load_models  # noqa: E402


@pytest.mark.parametrize("folder, arch", [("sd1", "sd1"), ("sd2", "sd2"), ("sd2-v", "sd2"), ("sdxl", "sdxl")])
def test_packaged_configs_build_every_module_of_the_arch_tables_with_real_widths(folder, arch):
    from accelerate import init_empty_weights
    from diffusers import UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    from lora_compat import arch as tables

    root = MODELS_DATA / folder
    with init_empty_weights():
        parts = {"unet": UNet2DConditionModel.from_config(UNet2DConditionModel.load_config(root / "unet"))}
        for sub, part in (("text_encoder", "te1"), ("text_encoder_2", "te2")):
            if (root / sub).is_dir():
                cfg = json.loads((root / sub / "config.json").read_text())
                cls = CLIPTextModelWithProjection if cfg["architectures"] == ["CLIPTextModelWithProjection"] \
                    else CLIPTextModel
                parts[part] = cls(CLIPTextConfig(**cfg))
    mods = {p: dict(m.named_modules()) for p, m in parts.items()}
    infos = tables.kohya_modules(arch, "locon")
    assert infos
    for info in infos:
        named = mods[info.part]
        path = next(p for p in (info.te_path(5), info.diffusers_path) if p in named)
        mod = named[path]
        if isinstance(mod, torch.nn.Linear):
            assert (mod.in_features, mod.out_features) == (info.in_features, info.out_features), info.kohya_name
        else:
            assert (mod.in_channels, mod.out_channels, mod.kernel_size[0]) == \
                (info.in_features, info.out_features, info.kernel), info.kohya_name
    sched = json.loads((root / "scheduler" / "scheduler_config.json").read_text())
    assert sched["prediction_type"] == ("v_prediction" if folder == "sd2-v" else "epsilon")


def test_single_file_without_tokenizer_names_what_is_missing(tmp_path):
    ckpt = tmp_path / "model.safetensors"
    ckpt.write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}      ")
    with pytest.raises(UserError, match=r"needs CLIP tokenizer files offline; missing .*tokenizer/vocab.json"):
        load_models(str(ckpt), "sd1")


def test_bad_inputs_are_user_errors(tmp_path):
    with pytest.raises(UserError, match="not found"):
        load_models(str(tmp_path / "nope"), "sd1")
    with pytest.raises(UserError, match="not a diffusers model folder"):
        load_models(str(tmp_path), "sd1")
    with pytest.raises(UserError, match="unknown tiny model"):
        load_models("tiny:sd3", None)
    pickle = tmp_path / "model.ckpt"
    pickle.write_bytes(b"not read")
    with pytest.raises(UserError, match=r"only \.safetensors single-file models"):
        load_models(str(pickle), "sd1")


def test_arch_mismatch_is_refused(tmp_path):
    from lora_compat.train.tiny import save_tiny_pipeline

    path = save_tiny_pipeline("sd1", tmp_path / "m")
    with pytest.raises(UserError, match=r"trains sdxl .* is sd1"):
        load_models(str(path), "sdxl")
    comps = load_models(str(path), "sd1")
    assert comps.arch == "sd1" and comps.extra.get("tiny") and len(comps.text_encoders) == 1


def test_single_file_uses_packaged_configs_offline_and_reports_missing_weights(tmp_path):
    """With tokenizer files beside it, a checkpoint is opened with the packaged configs (no hub access);
    one that lacks components fails with a one-line UserError naming the component."""
    import shutil

    from safetensors.torch import save_file

    from lora_compat.train.tiny import TINY_TOKENIZER_DIR

    shutil.copytree(TINY_TOKENIZER_DIR, tmp_path / "tokenizer")
    ckpt = tmp_path / "partial.safetensors"
    save_file({"model.diffusion_model.input_blocks.0.0.weight": torch.zeros(320, 4, 3, 3)}, str(ckpt))
    with pytest.raises(UserError, match=r"cannot load as a single-file sd1 checkpoint: .*missing") as exc:
        load_models(str(ckpt), "sd1")
    assert "\n" not in str(exc.value)


def test_single_file_accepts_transformers5_tokenizer_folders(tmp_path):
    """A tokenizer folder saved by transformers 5 holds only tokenizer.json: the check must accept it and go on
    to open the checkpoint (which here lacks weights, so the error is about the checkpoint, not the tokenizer)."""
    import shutil

    from safetensors.torch import save_file

    from lora_compat.train.tiny import save_tiny_pipeline

    saved = save_tiny_pipeline("sd1", tmp_path / "tiny")
    (tmp_path / "ck" / "tokenizer").mkdir(parents=True)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(saved / "tokenizer" / name, tmp_path / "ck" / "tokenizer" / name)
    assert not (tmp_path / "ck" / "tokenizer" / "vocab.json").exists()
    ckpt = tmp_path / "ck" / "partial.safetensors"
    save_file({"model.diffusion_model.input_blocks.0.0.weight": torch.zeros(320, 4, 3, 3)}, str(ckpt))
    with pytest.raises(UserError, match="cannot load as a single-file sd1 checkpoint"):
        load_models(str(ckpt), "sd1")
