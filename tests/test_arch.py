"""Module-name tables vs sd-scripts' key lists (golden) and vs tiny diffusers/transformers models of the same layout."""

from __future__ import annotations

import pytest

from lora_compat import arch as archmod

from shared_data import golden


def _golden_modules(keys: dict) -> dict[str, dict[str, list[int]]]:
    mods: dict[str, dict[str, list[int]]] = {}
    for key, shape in keys.items():
        name, param = key.split(".", 1)
        mods.setdefault(name, {})[param] = shape
    return mods


@pytest.mark.golden
@pytest.mark.parametrize("case", ["sd1/lora_dim8_alpha4", "sd1/locon_dim8_conv4", "sd2/lora_dim8_alpha4",
                                  "sd2/locon_dim8_conv4", "sdxl/lora_dim8_alpha4", "sdxl/locon_dim8_conv4"])
def test_tables_match_sd_scripts_keys_and_shapes(case: str) -> None:
    cases = golden("kohya_lora_keys.json")["cases"]
    arch, variant = case.split("/")
    algo = variant.split("_")[0]
    expected = _golden_modules(cases[case])
    ours = {m.kohya_name: m for m in archmod.kohya_modules(arch, algo)}
    assert set(ours) == set(expected)
    for name, params in expected.items():
        info = ours[name]
        assert set(params) == {"lora_down.weight", "lora_up.weight", "alpha"}
        rank = params["lora_down.weight"][0]
        # golden was made with network_dim 8 and conv_dim 4: 3x3 convs get conv_dim, everything else network_dim
        assert rank == (4 if info.is_conv3x3 else 8), name
        down, up = info.lora_shapes(rank)
        assert list(down) == params["lora_down.weight"], name
        assert list(up) == params["lora_up.weight"], name
        assert params["alpha"] == []


@pytest.mark.parametrize("arch", archmod.ARCHS)
def test_no_collisions_and_unique_inverse(arch: str) -> None:
    mods = archmod.all_modules(arch)
    assert len({m.kohya_name for m in mods}) == len(mods)
    assert len({(m.part, m.diffusers_path) for m in mods}) == len(mods)
    for m in mods:
        assert "." not in m.kohya_name
        assert archmod.lookup_kohya(m.kohya_name, arch) is m
        assert archmod.diffusers_to_kohya(m.diffusers_path, m.part, arch) == m.kohya_name
        assert archmod.kohya_to_diffusers(m.kohya_name, arch) == (m.part, m.diffusers_path)
        assert archmod.lookup_path(m.te_path(5), m.part, arch) is m


def test_default_counts_match_reference() -> None:
    def count(arch: str, algo: str, part: str) -> int:
        return sum(1 for m in archmod.kohya_modules(arch, algo) if m.part == part)
    assert (count("sd1", "lora", "unet"), count("sd1", "lora", "te1")) == (192, 72)
    assert (count("sdxl", "lora", "unet"), count("sdxl", "lora", "te1"), count("sdxl", "lora", "te2")) == (722, 72, 192)
    assert count("sd2", "lora", "te1") == 23 * 6


@pytest.mark.parametrize("sgm,path", [
    ("input_blocks.0.0", "conv_in"), ("time_embed.0", "time_embedding.linear_1"),
    ("time_embed.2", "time_embedding.linear_2"), ("label_emb.0.0", "add_embedding.linear_1"),
    ("label_emb.0.2", "add_embedding.linear_2"), ("input_blocks.3.0.op", "down_blocks.0.downsamplers.0.conv"),
    ("input_blocks.6.0.op", "down_blocks.1.downsamplers.0.conv"),
    ("output_blocks.2.2.conv", "up_blocks.0.upsamplers.0.conv"),
    ("output_blocks.5.2.conv", "up_blocks.1.upsamplers.0.conv"),
    ("middle_block.0.in_layers.2", "mid_block.resnets.0.conv1"),
    ("middle_block.1.proj_in", "mid_block.attentions.0.proj_in"),
    ("middle_block.2.out_layers.3", "mid_block.resnets.1.conv2"),
    ("out.2", "conv_out"), ("input_blocks.1.0.emb_layers.1", "down_blocks.0.resnets.0.time_emb_proj"),
    ("input_blocks.1.0.in_layers.2", "down_blocks.0.resnets.0.conv1"),
    ("input_blocks.4.0.skip_connection", "down_blocks.1.resnets.0.conv_shortcut"),
    ("input_blocks.4.1.transformer_blocks.0.attn2.to_k", "down_blocks.1.attentions.0.transformer_blocks.0.attn2.to_k"),
    ("output_blocks.0.1.transformer_blocks.9.ff.net.2", "up_blocks.0.attentions.0.transformer_blocks.9.ff.net.2"),
])
def test_sdxl_sgm_names(sgm: str, path: str) -> None:
    info = archmod.lookup_kohya("lora_unet_" + sgm.replace(".", "_"), "sdxl")
    assert info is not None and info.diffusers_path == path and info.sgm_path == sgm
    assert info.kohya_name == "lora_unet_" + sgm.replace(".", "_")  # SGM is the canonical SDXL spelling
    # the diffusers-named SDXL variant resolves to the same module
    assert archmod.lookup_kohya("lora_unet_" + path.replace(".", "_"), "sdxl") is info


@pytest.mark.parametrize("arch", ["sd1", "sd2"])
def test_sd1_sd2_sgm_aliases(arch: str) -> None:
    up0 = archmod.lookup_kohya("lora_unet_output_blocks_2_1_conv", arch)
    assert up0 is not None and up0.diffusers_path == "up_blocks.0.upsamplers.0.conv"
    assert up0.kohya_name == "lora_unet_up_blocks_0_upsamplers_0_conv"

    def path(kohya_name: str) -> str:
        info = archmod.lookup_kohya(kohya_name, arch)
        assert info is not None, kohya_name
        return info.diffusers_path

    assert path("lora_unet_output_blocks_5_2_conv") == "up_blocks.1.upsamplers.0.conv"
    assert path("lora_unet_input_blocks_11_0_in_layers_2") == "down_blocks.3.resnets.1.conv1"
    assert path("lora_unet_input_blocks_1_1_proj_in") == "down_blocks.0.attentions.0.proj_in"
    assert archmod.lookup_kohya("lora_unet_output_blocks_2_2_conv", arch) is None


def test_text_encoder_names_and_transformers5_paths() -> None:
    sd1 = archmod.lookup_kohya("lora_te_text_model_encoder_layers_0_mlp_fc1", "sd1")
    assert (sd1.part, sd1.in_features, sd1.out_features) == ("te1", 768, 3072)
    assert sd1.te_path(4) == "text_model.encoder.layers.0.mlp.fc1"
    assert sd1.te_path(5) == "encoder.layers.0.mlp.fc1"
    assert archmod.lookup_kohya("lora_te1_text_model_encoder_layers_0_mlp_fc1", "sd1") is sd1
    assert archmod.lookup_kohya("lora_te1_text_model_encoder_layers_0_mlp_fc1", "sd2") is None  # sd2: lora_te_ only
    sd2 = archmod.lookup_kohya("lora_te_text_model_encoder_layers_22_mlp_fc1", "sd2")
    assert (sd2.in_features, sd2.out_features) == (1024, 4096)
    te2 = archmod.lookup_kohya("lora_te2_text_model_encoder_layers_31_self_attn_q_proj", "sdxl")
    assert te2.part == "te2" and te2.te_path(5) == te2.diffusers_path  # WithProjection keeps text_model.
    te1 = archmod.lookup_kohya("lora_te1_text_model_encoder_layers_0_self_attn_q_proj", "sdxl")
    assert te1.te_path(5) == "encoder.layers.0.self_attn.q_proj"
    assert archmod.diffusers_to_kohya("encoder.layers.0.self_attn.q_proj", "te1", "sdxl") == te1.kohya_name
    assert archmod.lookup_kohya("lora_te2_text_projection", "sdxl").group == "extra"
    assert archmod.kohya_prefix("te1", "sd1") == "lora_te" and archmod.kohya_prefix("te1", "sdxl") == "lora_te1"


def test_peft_target_modules_are_full_paths() -> None:
    unet = archmod.peft_target_modules("sd1", "unet")
    assert "down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q" in unet and len(unet) == 192
    assert archmod.peft_target_modules("sd1", "te1", transformers_major=5)[0].startswith("encoder.layers.0.")


# --- against the installed libraries' real module trees (tiny widths, real block layout) --------------------------

def _tiny_unet(arch: str):
    diffusers = pytest.importorskip("diffusers")
    common = {"sample_size": 8, "in_channels": 4, "out_channels": 4, "layers_per_block": 2, "norm_num_groups": 8,
              "attention_head_dim": 8}
    if arch == "sdxl":
        return diffusers.UNet2DConditionModel(
            block_out_channels=(16, 32, 64),
            down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
            up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
            transformer_layers_per_block=(1, 2, 10),
            cross_attention_dim=24, use_linear_projection=True, addition_embed_type="text_time",
            addition_time_embed_dim=8, projection_class_embeddings_input_dim=8 * 6 + 24, **common)
    return diffusers.UNet2DConditionModel(
        block_out_channels=(16, 32, 64, 64),
        down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
        up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
        cross_attention_dim=24, use_linear_projection=(arch == "sd2"), **common)


def _linear_conv_modules(model) -> dict[str, tuple[str, int]]:
    import torch

    out = {}
    for name, mod in model.named_modules():
        if isinstance(mod, torch.nn.Linear):
            out[name] = ("linear", 1)
        elif isinstance(mod, torch.nn.Conv2d):
            out[name] = ("conv", mod.kernel_size[0])
    return out


@pytest.mark.parametrize("arch", archmod.ARCHS)
def test_unet_paths_and_kinds_match_diffusers(arch: str) -> None:
    real = _linear_conv_modules(_tiny_unet(arch))
    ours = {m.diffusers_path: (m.kind, m.kernel) for m in archmod.all_modules(arch) if m.part == "unet"}
    assert ours == real


@pytest.mark.parametrize("arch", archmod.ARCHS)
def test_text_encoder_paths_match_transformers(arch: str) -> None:
    transformers = pytest.importorskip("transformers")
    major = int(transformers.__version__.split(".")[0])
    for part in archmod.te_parts(arch):
        mods = [m for m in archmod.all_modules(arch) if m.part == part]
        layers = 1 + max(int(m.diffusers_path.split(".")[3]) for m in mods if m.group == "text")
        cls = getattr(transformers, mods[0].hf_class)
        cfg = transformers.CLIPTextConfig(hidden_size=16, intermediate_size=32, num_hidden_layers=layers,
                                          num_attention_heads=2, projection_dim=16)
        real = _linear_conv_modules(cls(cfg))
        assert {m.te_path(major): (m.kind, m.kernel) for m in mods} == real
