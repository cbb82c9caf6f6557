"""SD3/SD3.5 LoRAs: sd-scripts' module set, reading every layout, exact conversion in every direction, check,
inspect and the CLI (no torch, except the table check against diffusers and ``--verify``).

No golden file holds SD3 LoRA keys. The expected module set is derived from sd-scripts' source at 48d368f:
``networks/lora_sd3.py`` wraps every ``Linear`` of every ``SingleDiTBlock`` (``library/sd3_models.py``: ``attn.qkv``,
``attn.proj``, ``attn2.*`` on SD3.5 medium's ``x_block_self_attn_layers``, ``mlp.fc1/fc2``,
``adaLN_modulation.1``; the last block's context half is ``pre_only``: ``attn.qkv`` and a 2h modulation only), the
CLIP-L / CLIP-G attention and MLP Linears (``lora_te1_`` / ``lora_te2_``), T5 with ``train_t5xxl``, and with
``emb_dims`` the embedders and the final layer (``x_embedder.proj``: its 2x2 Conv2d). Files are tiny-width models
with SD3's block layout, or real widths with only a few blocks at rank 1 (the CI disk is shared).
"""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from lora_compat.arch import families, sd3
from lora_compat.arch import flux as fa
from lora_compat.cli import cli as main
from lora_compat.errors import UserError
from lora_compat.weights.check import check_lora
from lora_compat.weights.convert import ConvertOptions, convert
from lora_compat.weights.inspect import inspect_data
from lora_compat.weights.reader import open_lora
from lora_compat.weights.safetensors_io import OutTensor, decode_values, encode_values, read_header, write_safetensors
from lora_compat.weights.sd3_synth import synth_sd3_kohya

pytest.importorskip("numpy")

W = sd3.Sd3Widths(depth=3, hidden=8, context=12, adm=6, in_channels=4, attn2_blocks=1, out_channels=4)
CLIP_L, CLIP_G, T5 = fa.ClipWidths(8, 16, 2), fa.ClipWidths(12, 20, 2), fa.T5Widths(8, 8, 16, 2)
TINY = sd3.sd3_table("sd3.5-medium", W, CLIP_L, CLIP_G, T5)
EMB = (2, 1, 3, 2, 2, 1)


def _bytes(path) -> dict[str, tuple]:
    sf = read_header(path)
    return {k: (e.dtype, e.shape, sf.read_bytes(k)) for k, e in sf.tensors.items()}


def _vary_alphas(path) -> None:
    """Give every third module its own alpha (in the file's alpha dtype)."""
    sf = read_header(path)
    tensors = []
    for i, (k, e) in enumerate(sf.tensors.items()):
        data = sf.read_bytes(k)
        if k.endswith(".alpha") and i % 3 == 0:
            data = encode_values([(1 + i % 7) if e.dtype == "I64" else 0.25 * (1 + i % 11)], e.dtype)
        tensors.append(OutTensor(k, e.dtype, e.shape, data))
    write_safetensors(path, tensors, dict(sf.metadata))


def _tiny(path, **kw):
    kw.setdefault("train_t5xxl", True)
    kw.setdefault("emb_dims", EMB)
    return synth_sd3_kohya(path, TINY, **kw)


# --- tables and sd-scripts' module set -------------------------------------------------------------------------------

def test_sd3_tables_match_a_tiny_diffusers_sd3_model() -> None:
    """Every SAI module's diffusers parts exist in SD3Transformer2DModel with these shapes (3.5 medium: attn2)."""
    torch = pytest.importorskip("torch")
    diffusers = pytest.importorskip("diffusers")
    model = diffusers.SD3Transformer2DModel(
        sample_size=8, patch_size=2, in_channels=4, num_layers=3, attention_head_dim=4, num_attention_heads=2,
        joint_attention_dim=12, caption_projection_dim=8, pooled_projection_dim=6, out_channels=4,
        pos_embed_max_size=8, dual_attention_layers=(0,), qk_norm="rms_norm")
    mods = {n: tuple(m.weight.shape) for n, m in model.named_modules()
            if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d))}
    ours = {}
    for m in sd3.transformer_modules("sd3.5-medium", W):
        for p in m.parts:
            ours[p.diffusers_path] = (p.out_features, m.in_features, m.kernel, m.kernel) if m.kernel > 1 else \
                (p.out_features, m.in_features)
    assert ours == mods


def test_sd_scripts_module_set_per_variant() -> None:
    """Counts and names of a default networks.lora_sd3 network (derived from sd-scripts' source, see above)."""
    counts = {}
    for v in sd3.SD3_VARIANTS:
        mods = sd3.sd_scripts_sd3_modules(sd3.sd3_table(v))
        counts[v] = (sum(m.part == "te1" for m in mods), sum(m.part == "te2" for m in mods),
                     sum(m.part == "transformer" for m in mods))
    # 23 full blocks x (5 context + 5 x) + the pre-only block (context qkv, mod; 5 x); SD3.5M: 13 x blocks + attn2
    assert counts == {"sd3-medium": (72, 192, 237), "sd3.5-large": (72, 192, 377), "sd3.5-medium": (72, 192, 263)}
    t = sd3.sd3_table("sd3-medium")
    names = {m.kohya_name for m in sd3.sd_scripts_sd3_modules(t, train_t5xxl=True, emb_dims=(4,) * 6)}
    assert "lora_unet_joint_blocks_23_context_block_attn_qkv" in names
    assert "lora_unet_joint_blocks_23_context_block_attn_proj" not in names
    assert "lora_te3_encoder_block_23_layer_1_DenseReluDense_wi_0" in names
    assert {"lora_unet_x_embedder_proj", "lora_unet_t_embedder_mlp_0", "lora_unet_context_embedder",
            "lora_unet_final_layer_adaLN_modulation_1", "lora_unet_final_layer_linear"} <= names
    assert t.by_kohya["lora_unet_x_embedder_proj"].kernel == 2
    assert t.by_kohya["lora_te2_text_model_encoder_layers_31_mlp_fc1"].weight_shape == (5120, 1280)
    assert t.by_kohya["lora_unet_joint_blocks_23_context_block_adaLN_modulation_1"].parts[0].swap
    m = sd3.sd3_table("sd3.5-medium").by_kohya["lora_unet_joint_blocks_12_x_block_adaLN_modulation_1"]
    assert m.out_features == 9 * 1536
    with pytest.raises(ValueError, match="must be 6 dimensions"):
        sd3.sd_scripts_sd3_modules(t, emb_dims=(1, 2))


def test_sd3_weights_stage_is_supported_and_the_others_still_refused() -> None:
    fam = families.FAMILIES["sd3"]
    assert fam.supports(families.WEIGHTS)
    assert not any(fam.supports(s) for s in (families.CONFIG, families.MIGRATE, families.PLAN, families.TRAIN))


# --- reading ---------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("variant,blocks", [("sd3-medium", (0, 23)), ("sd3.5-large", (0, 37)),
                                            ("sd3.5-medium", (0, 23))])
def test_real_width_variants_are_detected(variant, blocks, tmp_path) -> None:
    """Real widths, two blocks at rank 1 (a small file): variant, no custom widths, the pre-only last block."""
    src = synth_sd3_kohya(tmp_path / "k.safetensors", sd3.sd3_table(variant), rank=1, dtype="F16",
                          text_encoders=False, blocks=blocks)
    lf = open_lora(src)
    assert (lf.layout, lf.arch, lf.variant, lf.custom_widths) == ("kohya", "sd3", variant, False)
    assert lf.family == "sd3"
    data = inspect_data(lf)
    assert data["arch"] == "sd3" and data["sd3"]["variant"] == variant and data["sd3"]["widths"] is None
    assert data["sd3"]["attn2_modules"] == (2 if variant == "sd3.5-medium" else 0)
    # without metadata the widths still say which model (SD3 medium vs 3.5 medium: attn2 / 9h modulation)
    sf = read_header(src)
    write_safetensors(tmp_path / "bare.safetensors",
                      [OutTensor(k, e.dtype, e.shape, sf.read_bytes(k)) for k, e in sf.tensors.items()], {})
    bare = open_lora(tmp_path / "bare.safetensors")
    assert bare.variant == (None if variant == "sd3-medium" else variant)


def test_tiny_widths_are_read_from_the_file(tmp_path) -> None:
    lf = open_lora(_tiny(tmp_path / "k.safetensors"))
    assert (lf.arch, lf.custom_widths, lf.variant) == ("sd3", True, None)
    assert lf.table.widths == W
    assert (lf.table.clip_l, lf.table.clip_g, lf.table.t5) == (CLIP_L, CLIP_G, T5)
    assert len(lf.modules) == 12 + 12 + 14 + (2 * 10 + 2 + 5 + 2) + 8
    # inspect --plot blocks: joint blocks as MM-DiT double blocks (kohya and diffusers names alike), T5 by block
    from lora_compat.weights.norms import block_label

    assert {block_label(m.info) for m in lf.modules if m.info.module.group == "joint"} == {"D00", "D01", "D02"}
    assert {block_label(m.info) for m in lf.modules if m.part == "te3"} == {"L00", "L01"}


def test_shapes_that_fit_no_sd3_model_are_refused(tmp_path) -> None:
    t = sd3.sd3_table()
    m = t.by_kohya["lora_unet_joint_blocks_0_x_block_attn_proj"]
    bad = [OutTensor(f"{m.kohya_name}.lora_down.weight", "F32", (1, 1536), bytes(4 * 1536)),
           OutTensor(f"{m.kohya_name}.lora_up.weight", "F32", (1536, 1), bytes(4 * 1536)),
           OutTensor("lora_unet_joint_blocks_0_x_block_mlp_fc1.lora_down.weight", "F32", (1, 1536), bytes(4 * 1536)),
           OutTensor("lora_unet_joint_blocks_0_x_block_mlp_fc1.lora_up.weight", "F32", (1000, 1), bytes(4000))]
    write_safetensors(tmp_path / "bad.safetensors", bad, {})
    with pytest.raises(UserError, match="shape mismatch: lora_unet_joint_blocks_0_x_block_mlp_fc1"):
        open_lora(tmp_path / "bad.safetensors")
    write_safetensors(tmp_path / "deep.safetensors", [
        OutTensor("lora_unet_joint_blocks_30_x_block_attn_proj.lora_down.weight", "F32", (1, 1536), bytes(6144)),
        OutTensor("lora_unet_joint_blocks_30_x_block_attn_proj.lora_up.weight", "F32", (1536, 1), bytes(6144))], {})
    with pytest.raises(UserError, match="joint block 30 is beyond the 24 blocks"):
        open_lora(tmp_path / "deep.safetensors")


def test_text_encoder_only_file_is_sd3_by_metadata_or_arch(tmp_path) -> None:
    """lora_te1_/lora_te2_ alone look like SDXL: SD3's metadata (or --arch sd3) decides."""
    src = synth_sd3_kohya(tmp_path / "te.safetensors", sd3.sd3_table(), rank=1, dtype="F16", blocks=())
    sf = read_header(src)
    keep = [OutTensor(k, e.dtype, e.shape, sf.read_bytes(k)) for k, e in sf.tensors.items() if "layers_0_" in k]
    write_safetensors(tmp_path / "te0.safetensors", keep, {"ss_base_model_version": "medium"})
    lf = open_lora(tmp_path / "te0.safetensors")
    assert (lf.arch, sorted({m.part for m in lf.modules})) == ("sd3", ["te1", "te2"])
    write_safetensors(tmp_path / "bare.safetensors", keep, {})
    assert open_lora(tmp_path / "bare.safetensors").arch == "sdxl"
    assert open_lora(tmp_path / "bare.safetensors", arch="sd3").arch == "sd3"


def test_onetrainer_sd3_file_is_read(tmp_path) -> None:
    """lora_transformer_<diffusers path> (OneTrainer; ComfyUI maps it for SD3) at SD3 medium's width: read only."""
    h = 1536
    tensors = []
    for name, rows in (("transformer_blocks_0_attn_to_q", h), ("transformer_blocks_0_attn_to_k", h),
                       ("transformer_blocks_3_ff_context_net_0_proj", 4 * h)):
        tensors += [OutTensor(f"lora_transformer_{name}.lora_down.weight", "F16", (1, h), bytes(2 * h)),
                    OutTensor(f"lora_transformer_{name}.lora_up.weight", "F16", (rows, 1), bytes(2 * rows)),
                    OutTensor(f"lora_transformer_{name}.alpha", "F32", (), encode_values([0.5], "F32"))]
    write_safetensors(tmp_path / "ot.safetensors", tensors, {})
    lf = open_lora(tmp_path / "ot.safetensors")
    assert (lf.arch, lf.layout, len(lf.modules)) == ("sd3", "onetrainer", 3)
    convert(tmp_path / "ot.safetensors", tmp_path / "k.safetensors", ConvertOptions(to="kohya"))
    k = read_header(tmp_path / "k.safetensors").tensors
    assert k["lora_unet_joint_blocks_0_x_block_attn_qkv.lora_up.weight"].shape == (3 * h, 1)   # identical downs
    assert "lora_unet_joint_blocks_3_context_block_mlp_fc1.alpha" in k


# --- conversion ------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", ["F16", "BF16"])
def test_round_trips_are_byte_identical(dtype: str, tmp_path) -> None:
    """kohya -> diffusers / PEFT / ComfyUI -> kohya: every tensor (alphas included) byte-identical, with CLIP-L,
    CLIP-G, T5, the emb_dims embedders (the Conv2d x_embedder), attn2, per-module ranks and alphas."""
    ranks = {"lora_unet_joint_blocks_1_x_block_attn_qkv": 3, "lora_unet_joint_blocks_0_x_block_attn2_qkv": 1,
             "lora_te2_text_model_encoder_layers_1_mlp_fc2": 4}
    src = _tiny(tmp_path / "src.safetensors", dtype=dtype, alpha=2.0, ranks=ranks, seed=3)
    _vary_alphas(src)
    want = _bytes(src)
    assert len({v[2] for k, v in want.items() if k.endswith(".alpha")}) > 3
    for to, out in (("diffusers", "d.safetensors"), ("peft", "p"), ("comfyui", "c.safetensors")):
        convert(src, tmp_path / out, ConvertOptions(to=to))
        assert open_lora(tmp_path / out).arch == "sd3"
        back = tmp_path / f"back_{to}.safetensors"
        convert(tmp_path / out, back, ConvertOptions(to="kohya"))
        assert _bytes(back) == want, to
        assert read_header(back).metadata["ss_network_module"] == "networks.lora_sd3"


def test_int64_alphas_survive_peft(tmp_path) -> None:
    src = _tiny(tmp_path / "src.safetensors", alpha=1, emb_dims=None, train_t5xxl=False)
    _vary_alphas(src)
    want = _bytes(src)
    assert {v[0] for k, v in want.items() if k.endswith(".alpha")} == {"I64"}
    convert(src, tmp_path / "p", ConvertOptions(to="peft"))
    assert sorted(p.name for p in (tmp_path / "p").iterdir()) == ["text_encoder", "text_encoder_2", "transformer"]
    cfg = json.loads((tmp_path / "p" / "transformer" / "adapter_config.json").read_text())
    assert cfg["alpha_pattern"]
    convert(tmp_path / "p", tmp_path / "back.safetensors", ConvertOptions(to="kohya"))
    assert _bytes(tmp_path / "back.safetensors") == want


def _f32(sf, key):
    e = sf.tensors[key]
    return decode_values(sf.read_bytes(key), e.dtype), e.shape


def test_diffusers_names_shared_downs_swapped_halves_and_conv(tmp_path) -> None:
    src = _tiny(tmp_path / "src.safetensors", alpha=2.0, seed=5)
    rep = convert(src, tmp_path / "d.safetensors", ConvertOptions(to="diffusers"))
    assert any("split 7 fused modules (qkv)" in n for n in rep.notes)
    assert any("text_encoder_3" in n for n in rep.notes)
    k, d = read_header(src), read_header(tmp_path / "d.safetensors")
    # fused qkv -> to_q/to_k/to_v (attn2 too) with the shared down, rows of the up in order
    for sai, parts in (("joint_blocks_0_x_block_attn2_qkv", ("attn2.to_q", "attn2.to_k", "attn2.to_v")),
                       ("joint_blocks_2_context_block_attn_qkv", ("attn.add_q_proj", "attn.add_k_proj",
                                                                  "attn.add_v_proj"))):
        blk = sai.split("_")[2]
        up, _ = _f32(k, f"lora_unet_{sai}.lora_up.weight")
        for j, p in enumerate(parts):
            base = f"transformer.transformer_blocks.{blk}.{p}"
            assert d.read_bytes(f"{base}.lora_A.weight") == k.read_bytes(f"lora_unet_{sai}.lora_down.weight")
            rows, _ = _f32(d, f"{base}.lora_B.weight")
            assert rows == up[j * 16:(j + 1) * 16]  # h = 8 rows x rank 2
    # the pre-only context modulation and the final adaLN: (shift, scale) in SAI, (scale, shift) in diffusers
    for sai, diff in (("joint_blocks_2_context_block_adaLN_modulation_1", "transformer_blocks.2.norm1_context.linear"),
                      ("final_layer_adaLN_modulation_1", "norm_out.linear")):
        up, shape = _f32(k, f"lora_unet_{sai}.lora_up.weight")
        got, _ = _f32(d, f"transformer.{diff}.lora_B.weight")
        half = len(up) // 2
        assert got == up[half:] + up[:half] and shape[0] == 16
    # a 6h modulation is copied as is (same chunk order), the 9h one of an attn2 block too
    assert d.read_bytes("transformer.transformer_blocks.0.norm1.linear.lora_B.weight") == \
        k.read_bytes("lora_unet_joint_blocks_0_x_block_adaLN_modulation_1.lora_up.weight")
    assert d.tensors["transformer.transformer_blocks.0.norm1.linear.lora_B.weight"].shape == (72, 2)
    # the 2x2 patch embedding keeps its conv shapes
    assert d.tensors["transformer.pos_embed.proj.lora_A.weight"].shape == (3, 4, 2, 2)
    assert d.tensors["transformer.pos_embed.proj.lora_B.weight"].shape == (8, 3, 1, 1)
    assert "text_encoder_2.text_model.encoder.layers.1.mlp.fc1.lora_A.weight" in d.tensors   # CLIP-G
    assert "text_encoder_3.encoder.block.1.layer.1.DenseReluDense.wo.lora_A.weight" in d.tensors   # T5
    meta = json.loads(d.metadata["lora_adapter_metadata"])
    assert meta["transformer.lora_alpha"] == 2 and meta["text_encoder_2.r"] == 2
    # ComfyUI-native names
    convert(src, tmp_path / "c.safetensors", ConvertOptions(to="comfyui"))
    c = read_header(tmp_path / "c.safetensors").tensors
    assert "diffusion_model.joint_blocks.0.x_block.attn2.qkv.lora_up.weight" in c
    assert "text_encoders.clip_g.transformer.text_model.encoder.layers.0.self_attn.q_proj.lora_down.weight" in c
    assert "text_encoders.t5xxl.transformer.encoder.block.0.layer.0.SelfAttention.q.alpha" in c


def _diffusers_file(path, parts: dict[str, tuple[int, float]], seed: int = 0) -> None:
    """A diffusers-named SD3 file (tiny widths) with independent downs per part and per-part scales."""
    import numpy as np

    rng = np.random.default_rng(seed)
    tensors, pattern = [], {}
    for path_, (r, alpha) in parts.items():
        p = TINY.by_diffusers[("transformer", path_)]
        for name, shp in (("lora_A", (r, p.in_features)), ("lora_B", (p.out_features, r))):
            vals = rng.standard_normal(shp[0] * shp[1]).astype("<f4").tobytes()
            tensors.append(OutTensor(f"transformer.{path_}.{name}.weight", "F32", shp, vals))
        pattern[path_] = alpha
    meta = {"transformer.r": 2, "transformer.lora_alpha": 2,
            "transformer.rank_pattern": {k: v[0] for k, v in parts.items()}, "transformer.alpha_pattern": pattern,
            "transformer.target_modules": sorted(parts)}
    write_safetensors(path, tensors, {"lora_adapter_metadata": json.dumps(meta),
                                      "lora_compat.conversion": json.dumps({"arch": "sd3"})})


def test_split_parts_fuse_block_diagonally_and_missing_parts_zero_filled(tmp_path) -> None:
    """Independent to_q/to_k downs (no to_v) -> one kohya qkv at rank r_q + r_k; different scales are baked."""
    _diffusers_file(tmp_path / "d.safetensors", {"transformer_blocks.0.attn.to_q": (2, 1.0),
                                                 "transformer_blocks.0.attn.to_k": (1, 3.0),
                                                 "transformer_blocks.1.attn.add_q_proj": (2, 2.0),
                                                 "transformer_blocks.1.attn.add_v_proj": (2, 2.0)})
    lf = open_lora(tmp_path / "d.safetensors")
    assert lf.arch == "sd3" and lf.custom_widths
    rep = convert(tmp_path / "d.safetensors", tmp_path / "k.safetensors", ConvertOptions(to="kohya"))
    assert any("block-diagonally" in n for n in rep.notes) and any("zero-filled" in n for n in rep.notes)
    k = read_header(tmp_path / "k.safetensors")
    assert k.tensors["lora_unet_joint_blocks_0_x_block_attn_qkv.lora_down.weight"].shape == (3, 8)
    assert k.tensors["lora_unet_joint_blocks_0_x_block_attn_qkv.lora_up.weight"].shape == (24, 3)
    up, _ = _f32(k, "lora_unet_joint_blocks_0_x_block_attn_qkv.lora_up.weight")
    assert up[16 * 3:] == [0.0] * 24   # to_v rows zero
    assert up[0 * 3 + 2] == 0.0 and up[8 * 3 + 0] == 0.0   # off-diagonal blocks zero
    alpha = _f32(k, "lora_unet_joint_blocks_1_context_block_attn_qkv.alpha")[0][0]
    assert alpha == 4.0   # equal scales 1.0 kept as an alpha: s * (2 + 2)


def test_verify_proves_the_fused_output(tmp_path) -> None:
    """--verify merges both sides per SAI module (the conv x_embedder included) and compares ΔW."""
    pytest.importorskip("torch")
    _diffusers_file(tmp_path / "d.safetensors", {"transformer_blocks.0.attn.to_q": (2, 1.0),
                                                 "transformer_blocks.0.attn.to_k": (1, 3.0)})
    rep = convert(tmp_path / "d.safetensors", tmp_path / "v.safetensors", ConvertOptions(to="kohya", verify=True))
    assert rep.verify is not None and rep.verify.ok and rep.verify.modules == 1
    src = _tiny(tmp_path / "k.safetensors", alpha=2.0, dtype="F16")
    for to, out in (("diffusers", "d2.safetensors"), ("peft", "p"), ("ai-toolkit", "a.safetensors")):
        rep = convert(src, tmp_path / out, ConvertOptions(to=to, verify=True, drop_t5=to == "ai-toolkit"))
        assert rep.verify is not None and rep.verify.ok, (to, rep.verify.failures)


def test_split_qkv_files_are_rescaled_and_reported(tmp_path) -> None:
    """sd-scripts' split_qkv saves the three sub-LoRAs fused (block-diagonal) with alpha for rank r: 1/3 strength."""
    src = _tiny(tmp_path / "s.safetensors", split_qkv=True, alpha=2.0, emb_dims=None, train_t5xxl=False,
                text_encoders=False)
    lf = open_lora(src)
    assert lf.split_qkv and inspect_data(lf)["sd3"]["split_qkv_weak_modules"] == 7   # x, context and attn2 qkv
    weak = [p for p in check_lora(lf, "comfyui").problems if "1/3" in p[1]]
    assert len(weak) == 7
    rep = convert(src, tmp_path / "d.safetensors", ConvertOptions(to="diffusers"))
    assert any("chunking" in n for n in rep.notes) and any("split_qkv" in n for n in rep.notes)
    d = read_header(tmp_path / "d.safetensors")
    assert d.tensors["transformer.transformer_blocks.0.attn.to_q.lora_A.weight"].shape == (2, 8)
    assert json.loads(d.metadata["lora_adapter_metadata"])["transformer.lora_alpha"] == 2  # 3 * 2 over rank 6 -> 1
    convert(tmp_path / "d.safetensors", tmp_path / "k.safetensors", ConvertOptions(to="kohya"))
    k, s = read_header(tmp_path / "k.safetensors"), read_header(src)
    name = "lora_unet_joint_blocks_1_x_block_attn_qkv"
    assert k.read_bytes(f"{name}.lora_up.weight") == s.read_bytes(f"{name}.lora_up.weight")
    assert _f32(k, f"{name}.alpha")[0][0] == 6.0
    assert not [p for p in check_lora(open_lora(tmp_path / "k.safetensors"), "comfyui").problems if "1/3" in p[1]]


def test_ai_toolkit_output_is_baked_and_refuses_t5_without_drop(tmp_path) -> None:
    src = _tiny(tmp_path / "src.safetensors", alpha=1.0)
    with pytest.raises(UserError, match="text_encoder_3"):
        convert(src, tmp_path / "a.safetensors", ConvertOptions(to="ai-toolkit"))
    convert(src, tmp_path / "a.safetensors", ConvertOptions(to="ai-toolkit", drop_t5=True))
    a = open_lora(tmp_path / "a.safetensors")
    assert {m.scale for m in a.modules} == {1.0} and "lora_adapter_metadata" not in a.metadata
    assert not any(m.part == "te3" for m in a.modules)


# --- check -----------------------------------------------------------------------------------------------------------

def test_check_says_what_loads_where(tmp_path) -> None:
    src = _tiny(tmp_path / "k.safetensors", alpha=1.0)
    lf = open_lora(src)
    n = len(lf.modules)
    res = check_lora(lf, "diffusers")
    assert len(res.problems) == n and "sd-scripts #2103" in res.problems[0][1]
    assert check_lora(lf, "comfyui").ok and check_lora(lf, "sd-scripts").ok
    assert len(check_lora(lf, "ai-toolkit").problems) == n
    with pytest.raises(UserError, match="not modelled for SD3"):
        check_lora(lf, "a1111")
    convert(src, tmp_path / "d.safetensors", ConvertOptions(to="diffusers"))
    d = open_lora(tmp_path / "d.safetensors")
    res = check_lora(d, "diffusers")
    assert {m for m, _ in res.problems} == {f"text_encoder_3.{m.info.parts[0].diffusers_path}" for m in d.modules
                                             if m.part == "te3"}
    res = check_lora(d, "comfyui")   # scales from metadata, which ComfyUI ignores; T5 as text_encoder_3 unmapped
    assert len(res.problems) == sum(1 for m in d.modules if m.part == "te3" or m.scale != 1.0) > 80
    assert not check_lora(d, "sd-scripts").ok
    # a kohya file without alphas: sd-scripts' loader raises KeyError
    sf = read_header(src)
    write_safetensors(tmp_path / "na.safetensors", [OutTensor(k, e.dtype, e.shape, sf.read_bytes(k))
                                                    for k, e in sf.tensors.items() if not k.endswith(".alpha")], {})
    assert "KeyError" in check_lora(open_lora(tmp_path / "na.safetensors"), "sd-scripts").problems[0][1]


# --- CLI -------------------------------------------------------------------------------------------------------------

def test_cli_inspect_check_and_convert(tmp_path) -> None:
    src = _tiny(tmp_path / "k.safetensors", emb_dims=None, train_t5xxl=False)
    runner = CliRunner()
    r = runner.invoke(main, ["inspect", str(src), "--format", "json"])
    assert r.exit_code == 0, r.output
    data = json.loads(r.output)
    assert data["arch"] == "sd3" and data["sd3"]["text_encoders"] == {"clip_l": 12, "clip_g": 12, "t5xxl": 0}
    assert data["sd3"]["kohya_names"]["te2"] == "lora_te2" and data["sd3"]["widths"]["hidden"] == 8
    r = runner.invoke(main, ["check", str(src), "--target", "diffusers", "--format", "json"])
    assert r.exit_code == 1 and json.loads(r.output)["arch"] == "sd3"
    r = runner.invoke(main, ["convert", str(src), str(tmp_path / "c.safetensors"), "--to", "comfyui", "--arch", "sd3"])
    assert r.exit_code == 0, r.output
    assert open_lora(tmp_path / "c.safetensors").layout == "comfyui"
