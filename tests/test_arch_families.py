"""The family registry (lora_compat.arch.families): its data, name hints, and base-model content readers."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest

from lora_compat.arch import families


def write_safetensors(path: Path, shapes: dict[str, list[int]], metadata: dict[str, str] | None = None) -> None:
    """A valid safetensors file of zero-filled F16 tensors (header written by hand: no torch in these tests)."""
    header: dict = {"__metadata__": metadata} if metadata else {}
    offset = 0
    for name, shape in shapes.items():
        n = 2
        for d in shape:
            n *= d
        header[name] = {"dtype": "F16", "shape": shape, "data_offsets": [offset, offset + n]}
        offset += n
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + b"\0" * offset)


# Tensor names of real checkpoints, a few per family (shapes kept tiny: only names and widths matter).
FLUX_DEV = ["double_blocks.0.img_attn.qkv.weight", "double_blocks.0.img_attn.proj.bias",
            "single_blocks.0.linear1.weight", "single_blocks.0.modulation.lin.bias", "guidance_in.in_layer.bias",
            "img_in.weight", "time_in.in_layer.weight"]
FLUX_SCHNELL = [k for k in FLUX_DEV if not k.startswith("guidance_in")]
CHROMA = ["distilled_guidance_layer.in_proj.bias", "double_blocks.0.img_attn.qkv.weight",
          "single_blocks.0.linear1.weight"]
FLUX2 = ["double_blocks.0.img_attn.qkv.weight", "single_stream_modulation.lin.weight",
         "double_stream_modulation_img.lin.weight"]
SD3_MEDIUM = ["model.diffusion_model.joint_blocks.0.x_block.attn.qkv.weight",
              "model.diffusion_model.joint_blocks.0.context_block.adaLN_modulation.1.bias",
              "text_encoders.clip_l.transformer.text_model.embeddings.position_embedding.weight"]
SD35_LARGE = [*SD3_MEDIUM, "model.diffusion_model.joint_blocks.0.context_block.attn.ln_k.weight"]
LUMINA2 = ["cap_embedder.0.weight", "noise_refiner.0.attention.qkv.weight", "context_refiner.0.attention.qkv.weight",
           "layers.0.attention.qkv.weight"]
HUNYUAN = ["byt5_in.fc1.weight", "double_blocks.0.img_attn_qkv.weight", "double_blocks.0.img_mlp.fc1.weight",
           "single_blocks.0.linear1.weight"]
ANIMA = ["net.blocks.0.self_attn.q_proj.weight", "net.blocks.0.cross_attn.q_proj.weight",
         "net.llm_adapter.blocks.0.self_attn.q_proj.weight", "net.t_embedder.1.linear_1.weight"]
SDXL_SGM = ["model.diffusion_model.input_blocks.0.0.weight", "model.diffusion_model.label_emb.0.0.weight",
            "conditioner.embedders.0.transformer.text_model.embeddings.position_embedding.weight",
            "conditioner.embedders.1.model.positional_embedding"]
SD2_LDM = ["model.diffusion_model.input_blocks.0.0.weight",
           "cond_stage_model.model.transformer.resblocks.0.attn.in_proj_weight"]
SD1_LDM = ["model.diffusion_model.input_blocks.0.0.weight",
           "cond_stage_model.transformer.text_model.embeddings.position_embedding.weight"]
FLUX_DIFFUSERS = ["transformer_blocks.0.attn.add_k_proj.bias", "transformer_blocks.0.attn.to_q.weight",
                  "single_transformer_blocks.0.attn.to_k.bias", "time_text_embed.guidance_embedder.linear_1.bias"]
SD3_DIFFUSERS = ["pos_embed.proj.weight", "transformer_blocks.0.attn.add_k_proj.weight",
                 "transformer_blocks.0.attn.to_q.weight"]


def test_registry_is_consistent() -> None:
    assert families.FAMILY_IDS[:9] == ("sd1", "sd2", "sdxl", "flux1", "chroma", "sd3", "lumina2", "hunyuan_image",
                                "anima")
    for script, fams in families.SCRIPT_FAMILIES.items():
        assert script.endswith("_train_network.py") or script == "train_network.py"
        assert fams and all(f in families.FAMILIES and script in families.FAMILIES[f].scripts for f in fams)
    for f in families.FAMILIES.values():
        assert f.supported <= families.ALL_STAGES
        for m in f.network_modules:
            assert f.id in families.network_module_families(m)
        assert f.sd == (f.id in ("sd1", "sd2", "sdxl"))
    for name, fams in families.FAMILY_OPTIONS.items():
        assert fams and not set(fams) & families.SD_FAMILIES, name
    # the SD families are supported everywhere; the others are named and refused until their stage lands
    assert families.supported_families(families.PLAN)[:3] == ("sd1", "sd2", "sdxl")
    assert families.family("flux1").label == "FLUX.1 (flux_train_network.py)"
    assert families.display_name("hunyuan_image") == "HunyuanImage-2.1" and families.display_name(None) == "unknown"
    with pytest.raises(ValueError, match="unknown model family"):
        families.family("sd4")
    with pytest.raises(ValueError, match="unknown stage"):
        families.family("sd1").supports("deploy")


def test_family_only_options_follow_the_scripts_parsers() -> None:
    assert families.FAMILY_OPTIONS["guidance_scale"] == ("flux1", "chroma")
    assert set(families.FAMILY_OPTIONS["clip_l"]) == {"flux1", "chroma", "sd3"}
    assert set(families.FAMILY_OPTIONS["ae"]) == {"flux1", "chroma", "lumina2"}
    assert families.FAMILY_OPTIONS["clip_g"] == ("sd3",) and families.FAMILY_OPTIONS["gemma2"] == ("lumina2",)
    assert families.FAMILY_OPTIONS["qwen3"] == ("anima",) and families.FAMILY_OPTIONS["byt5"] == ("hunyuan_image",)
    # accepted by sdxl_train_network.py too: names no single family
    for shared in ("cache_text_encoder_outputs", "disable_mmap_load_safetensors", "network_dim"):
        assert shared not in families.FAMILY_OPTIONS


def test_script_switches() -> None:
    assert families.family_of_script("train_network.py") == "sd1"
    assert families.family_of_script("train_network.py", v2=True) == "sd2"
    # sd-scripts asserts on this pair; the script decides the family
    assert families.family_of_script("sdxl_train_network.py", v2=True) == "sdxl"
    assert families.family_of_script("flux_train_network.py") == "flux1"
    assert families.family_of_script("flux_train_network.py", model_type="chroma") == "chroma"
    assert families.family_of_script("lumina_train_network.py") == "lumina2"
    assert families.family_of_script("flux_train.py") is None


@pytest.mark.parametrize("name, family", [
    ("sd_xl_base_1.0.safetensors", "sdxl"), ("/m/juggernautXL_v9.safetensors", "sdxl"),
    ("stabilityai/stable-diffusion-xl-base-1.0", "sdxl"), ("ponyDiffusionV6XL.safetensors", "sdxl"),
    ("flux1-dev.safetensors", "flux1"), ("E:\\models\\flux1\\flux1-schnell.safetensors", "flux1"),
    ("black-forest-labs/FLUX.1-dev", "flux1"), ("put the full path to flux1-dev.safetensors here", "flux1"),
    ("flux2-dev.safetensors", "flux2"), ("chroma-unlocked-v38.safetensors", "chroma"),
    ("sd3.5_large.safetensors", "sd3"), ("sd3_medium_incl_clips.safetensors", "sd3"),
    ("lumina_2.safetensors", "lumina2"), ("hunyuanimage2.1.safetensors", "hunyuan_image"),
    ("anima-preview.safetensors", "anima"), ("animagine-xl-3.1.safetensors", "sdxl"),
    ("v2-1_768-ema-pruned.safetensors", "sd2"), ("stabilityai/stable-diffusion-2-1", "sd2"),
    ("v1-5-pruned-emaonly.safetensors", "sd1"), ("runwayml/stable-diffusion-v1-5", "sd1"),
    ("sd-v1-4.ckpt", "sd1"), ("/data/sdxl/model.safetensors", "sdxl"),
])
def test_name_hints(name: str, family: str) -> None:
    hint = families.family_from_model_name(name)
    assert hint is not None and hint.family == family, hint


@pytest.mark.parametrize("name", ["model.safetensors", "a.safetensors", "", "/models/my_lora_base.ckpt",
                                  "animated_style.safetensors"])
def test_names_without_a_family(name: str) -> None:
    assert families.family_from_model_name(name) is None


@pytest.mark.parametrize("keys, family, variant", [
    (FLUX_DEV, "flux1", "dev"), (FLUX_SCHNELL, "flux1", "schnell"),
    (["model.diffusion_model." + k for k in FLUX_DEV], "flux1", "dev"),
    (CHROMA, "chroma", None), (FLUX2, "flux2", None), (SD3_MEDIUM, "sd3", "medium"),
    (SD35_LARGE, "sd3", "5-large"), (LUMINA2, "lumina2", None), (HUNYUAN, "hunyuan_image", None),
    (ANIMA, "anima", None), (SDXL_SGM, "sdxl", None), (SD2_LDM, "sd2", None), (SD1_LDM, "sd1", None),
    (FLUX_DIFFUSERS, "flux1", "dev"), (SD3_DIFFUSERS, "sd3", "medium"),
])
def test_checkpoint_keys(keys: list[str], family: str, variant: str | None) -> None:
    found = families.family_from_checkpoint_keys(keys)
    assert found is not None and (found.family, found.variant) == (family, variant), found


def test_bare_unet_width_tells_sd1_from_sd2() -> None:
    name = "down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k.weight"
    assert families.family_from_checkpoint_keys([name], {name: [320, 768]}).family == "sd1"
    assert families.family_from_checkpoint_keys([name], {name: [320, 1024]}).family == "sd2"
    assert families.family_from_checkpoint_keys(["lora_unet_x.lora_down.weight"]) is None


def test_metadata() -> None:
    assert families.family_from_metadata({"ss_base_model_version": "flux1"}) == "flux1"
    assert families.family_from_metadata({"ss_base_model_version": "chroma"}) == "chroma"
    assert families.family_from_metadata({"ss_base_model_version": "flux.1"}) == "flux1"          # ai-toolkit
    assert families.family_from_metadata({"ss_base_model_version": "5-large"}) == "sd3"  # SD3: bare model_type
    assert families.family_from_metadata({"ss_base_model_version": "sd_3"}) == "sd3"               # ai-toolkit
    assert families.family_from_metadata({"ss_base_model_version": "sdxl_base_v1-0"}) == "sdxl"
    assert families.family_from_metadata({"ss_base_model_version": "sd_v2_v"}) == "sd2"
    assert families.family_from_metadata({"ss_base_model_version": "hunyuan-image-2.1"}) == "hunyuan_image"
    assert families.family_from_metadata({"modelspec.architecture": "flux-1-schnell/lora"}) == "flux1"
    assert families.family_from_metadata({"modelspec.architecture": "stable-diffusion-xl-v1-base/lora"}) == "sdxl"
    assert families.family_from_metadata({"modelspec.architecture": "stable-diffusion-3-5-medium/lora"}) == "sd3"
    assert families.family_from_metadata({"modelspec.architecture": "stable-diffusion-v2-768-v"}) == "sd2"
    assert families.family_from_metadata({"modelspec.architecture": "lumina-2/lora"}) == "lumina2"
    assert families.family_from_metadata({"modelspec.architecture": "anima-preview/lora"}) == "anima"
    assert families.family_from_metadata({"ss_v2": "False"}) == "sd1"
    assert families.family_from_metadata({}) is None


def _folder(root: Path, files: dict[str, dict]) -> Path:
    for rel, data in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(json.dumps(data), encoding="utf-8")
    return root


@pytest.mark.parametrize("files, family", [
    ({"model_index.json": {"_class_name": "StableDiffusionXLPipeline"}}, "sdxl"),
    ({"model_index.json": {"_class_name": "StableDiffusionPipeline"},
      "unet/config.json": {"_class_name": "UNet2DConditionModel", "cross_attention_dim": 768}}, "sd1"),
    ({"model_index.json": {"_class_name": "StableDiffusionPipeline"},
      "unet/config.json": {"_class_name": "UNet2DConditionModel", "cross_attention_dim": 1024}}, "sd2"),
    ({"model_index.json": {"_class_name": "FluxPipeline"}}, "flux1"),
    ({"model_index.json": {"_class_name": "ChromaPipeline"}}, "chroma"),
    ({"model_index.json": {"_class_name": "Flux2Pipeline"}}, "flux2"),
    ({"model_index.json": {"_class_name": "StableDiffusion3Pipeline"}}, "sd3"),
    ({"model_index.json": {"_class_name": "Lumina2Pipeline"}}, "lumina2"),
    ({"model_index.json": {"_class_name": "HunyuanImagePipeline"}}, "hunyuan_image"),
    ({"transformer/config.json": {"_class_name": "FluxTransformer2DModel"}}, "flux1"),
    ({"config.json": {"_class_name": "SD3Transformer2DModel"}}, "sd3"),
    ({"unet/config.json": {"_class_name": "UNet2DConditionModel", "cross_attention_dim": 2048,
                           "addition_embed_type": "text_time"}}, "sdxl"),
])
def test_diffusers_folders(tmp_path: Path, files: dict, family: str) -> None:
    found = families.family_of_model_path(str(_folder(tmp_path / "m", files)))
    assert found is not None and found.family == family, found


@pytest.mark.parametrize("unet, te, family", [
    # narrow test models (lora_compat.train.tiny): widths say nothing, the projection kind and activation do
    ({"cross_attention_dim": 32, "use_linear_projection": True}, {"hidden_size": 32, "hidden_act": "gelu"}, "sd2"),
    ({"cross_attention_dim": 32, "use_linear_projection": False}, {"hidden_size": 32}, "sd1"),
    ({}, {"hidden_size": 32, "hidden_act": "quick_gelu"}, "sd1"),
    ({}, {"hidden_size": 1024}, "sd2"),
])
def test_sd1_or_sd2_pipeline(tmp_path: Path, unet: dict, te: dict, family: str) -> None:
    files = {"model_index.json": {"_class_name": "StableDiffusionPipeline"}, "text_encoder/config.json": te}
    if unet:
        files["unet/config.json"] = unet
    found = families.family_of_model_path(str(_folder(tmp_path / "m", files)))
    assert found is not None and found.family == family


def test_an_sd_pipeline_that_does_not_say_which_is_no_answer(tmp_path: Path) -> None:
    # never a guess: SD1 vs SD2 unknown is "no content evidence", not SD1
    folder = _folder(tmp_path / "m", {"model_index.json": {"_class_name": "StableDiffusionPipeline"}})
    assert families.family_of_model_path(str(folder)) is None


def test_single_files(tmp_path: Path) -> None:
    flux = tmp_path / "flux1-dev.safetensors"
    write_safetensors(flux, {k: [2, 2] for k in FLUX_DEV})
    found = families.family_of_model_path(str(flux))
    assert (found.family, found.variant) == ("flux1", "dev") and "guidance_in" in found.why
    sdxl = tmp_path / "x.safetensors"
    write_safetensors(sdxl, {k: [2] for k in SDXL_SGM})
    assert families.family_of_model_path(str(sdxl)).family == "sdxl"
    # no recognisable key: the metadata decides
    meta = tmp_path / "m.safetensors"
    write_safetensors(meta, {"w": [1]}, {"modelspec.architecture": "stable-diffusion-3-medium"})
    assert families.family_of_model_path(str(meta)).family == "sd3"
    assert families.read_safetensors_keys(str(meta))[1] == {"modelspec.architecture": "stable-diffusion-3-medium"}


def test_unreadable_models_say_nothing(tmp_path: Path) -> None:
    assert families.family_of_model_path(str(tmp_path / "absent.safetensors")) is None
    ckpt = tmp_path / "model.ckpt"
    ckpt.write_bytes(b"PK\x03\x04 pickled")               # never opened: a pickle can run code
    assert families.family_of_model_path(str(ckpt)) is None
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(struct.pack("<Q", 1 << 40) + b"{}")   # header length past the limit
    assert families.family_of_model_path(str(bad)) is None
    notjson = tmp_path / "nj.safetensors"
    notjson.write_bytes(struct.pack("<Q", 4) + b"abcd")
    assert families.family_of_model_path(str(notjson)) is None
    (tmp_path / "empty").mkdir()
    assert families.family_of_model_path(str(tmp_path / "empty")) is None
    assert families.family_of_model_path("") is None
