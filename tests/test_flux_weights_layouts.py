"""FLUX layouts: detection (and naming refused families), the read-only layouts, check, inspect and the CLI."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from lora_compat.arch import flux as fa
from lora_compat.cli import cli as main
from lora_compat.errors import UserError
from lora_compat.weights.check import check_lora
from lora_compat.weights.convert import ConvertOptions, convert
from lora_compat.weights.inspect import inspect_data
from lora_compat.weights.reader import open_lora
from lora_compat.weights.safetensors_io import OutTensor, decode_values, encode_values, read_header, write_safetensors

W = fa.FluxWidths(hidden=16, mlp=64, in_channels=8, out_channels=8, context=12, vec=6, double=2, single=2)
TABLE = fa.flux_table("flux1-dev", W, fa.ClipWidths(16, 24, 2), fa.T5Widths(16, 8, 24, 2))


def _t(name: str, shape, value: float = 0.01, dtype: str = "F32") -> OutTensor:
    n = 1
    for d in shape:
        n *= d
    return OutTensor(name, dtype, tuple(shape), encode_values([value] * n, dtype))


def _write(path, tensors, meta=None):
    write_safetensors(path, tensors, meta or {})
    return path


def _kohya_tiny(path, names=None, rank=2, alpha=1.0, meta=None, parts=("te1", "te3", "transformer")):
    tensors = []
    for m in TABLE.modules:
        if m.part not in parts or (names is not None and m.kohya_name not in names):
            continue
        tensors += [_t(f"{m.kohya_name}.lora_down.weight", (rank, m.in_features)),
                    _t(f"{m.kohya_name}.lora_up.weight", (m.out_features, rank)),
                    _t(f"{m.kohya_name}.alpha", (), alpha)]
    return _write(path, tensors, meta)


def test_tiny_widths_are_inferred_and_every_layout_detected(tmp_path) -> None:
    src = _kohya_tiny(tmp_path / "k.safetensors")
    lf = open_lora(src)
    assert (lf.layout, lf.arch, lf.custom_widths) == ("kohya", "flux1", True)
    assert lf.table.widths == W and lf.table.t5 == fa.T5Widths(16, 8, 24, 2)
    assert lf.variant == "flux1-dev"  # guidance_in is only in dev
    for to, layout in (("comfyui", "comfyui"), ("diffusers", "diffusers"), ("peft", "peft")):
        out = tmp_path / to
        convert(src, out, ConvertOptions(to=to))
        assert open_lora(out).layout == layout
    assert any(k.startswith("diffusion_model.double_blocks.0.img_attn.qkv") for k in
               read_header(tmp_path / "comfyui").tensors)
    assert "text_encoders.t5xxl.transformer.encoder.block.0.layer.0.SelfAttention.q.lora_up.weight" in \
        read_header(tmp_path / "comfyui").tensors
    assert (tmp_path / "peft" / "text_encoder_2" / "adapter_config.json").is_file()


@pytest.mark.parametrize("keys,meta,family", [
    (["lora_unet_double_blocks_0_img_mlp_fc1.lora_down.weight"], {}, "HunyuanImage-2.1"),
    (["transformer.single_transformer_blocks.0.attn.to_qkv_mlp_proj.lora_A.weight"], {}, "FLUX.2"),
    (["lora_unet_layers_0_attention_qkv.lora_down.weight"], {}, "Lumina-Image 2.0"),
    (["lora_unet_double_blocks_0_img_attn_qkv.lora_down.weight"], {"ss_base_model_version": "anima"}, "Anima"),
    (["lora_unet_blocks_0_self_attn_q_proj.lora_down.weight"], {"modelspec.architecture": "anima-preview/lora"},
     "Anima"),
])
def test_other_families_are_named_and_refused(keys, meta, family, tmp_path) -> None:
    path = _write(tmp_path / "x.safetensors", [_t(k, (2, 16)) for k in keys], meta)
    with pytest.raises(UserError, match=f"this is a {family}"):
        open_lora(path)


def test_mm_dit_double_blocks_with_sd3_widths_are_sd3(tmp_path) -> None:
    """FLUX.1 and SD3 share diffusers' MM-DiT double-block names: the width decides (SD3 is read since #13)."""
    h = 1536
    tensors = [_t("transformer.transformer_blocks.0.attn.add_q_proj.lora_A.weight", (2, h)),
               _t("transformer.transformer_blocks.0.attn.add_q_proj.lora_B.weight", (h, 2)),
               _t("transformer.transformer_blocks.0.attn.to_q.lora_A.weight", (2, h)),
               _t("transformer.transformer_blocks.0.attn.to_q.lora_B.weight", (h, 2))]
    assert open_lora(_write(tmp_path / "sd3.safetensors", tensors)).arch == "sd3"
    h = 3072  # the same names at FLUX.1's width: FLUX
    tensors = [_t(t.name, tuple(h if d == 1536 else d for d in t.shape)) for t in tensors]
    assert open_lora(_write(tmp_path / "flux.safetensors", tensors)).arch == "flux1"


def test_sd_files_are_not_taken_for_flux_and_refuse_flux_only_targets(tmp_path) -> None:
    from lora_compat.weights.synth import synth_kohya

    src = synth_kohya(tmp_path / "sd1.safetensors", "sd1", te=False)
    assert open_lora(src).arch == "sd1"
    with pytest.raises(UserError, match="defined for FLUX"):
        convert(src, tmp_path / "out.safetensors", ConvertOptions(to="comfyui"))


def test_xlabs_onetrainer_and_simpletuner_are_read(tmp_path) -> None:
    h, mlp = 3072, 12288
    xlabs = [_t("double_blocks.0.processor.qkv_lora1.down.weight", (4, h)),
             _t("double_blocks.0.processor.qkv_lora1.up.weight", (3 * h, 4)),
             _t("double_blocks.0.processor.proj_lora2.down.weight", (4, h)),
             _t("double_blocks.0.processor.proj_lora2.up.weight", (h, 4)),
             _t("single_blocks.1.processor.qkv_lora.down.weight", (4, h)),
             _t("single_blocks.1.processor.qkv_lora.up.weight", (3 * h, 4))]
    lf = open_lora(_write(tmp_path / "xlabs.safetensors", xlabs))
    assert lf.layout == "xlabs" and len(lf.modules) == 3
    rep = convert(tmp_path / "xlabs.safetensors", tmp_path / "x_k.safetensors", ConvertOptions(to="kohya"))
    k = read_header(tmp_path / "x_k.safetensors")
    assert k.tensors["lora_unet_double_blocks_0_img_attn_qkv.lora_up.weight"].shape == (3 * h, 4)
    assert k.tensors["lora_unet_double_blocks_0_txt_attn_proj.lora_down.weight"].shape == (4, h)
    # a single block's qkv_lora covers q/k/v of linear1 only: the MLP rows are zero
    assert k.tensors["lora_unet_single_blocks_1_linear1.lora_up.weight"].shape == (3 * h + mlp, 4)
    assert set(decode_values(k.read_bytes("lora_unet_single_blocks_1_linear1.lora_up.weight")[3 * h * 4 * 4:],
                             "F32")) == {0.0}
    assert any("zero-filled" in n for n in rep.notes)
    assert decode_values(k.read_bytes("lora_unet_double_blocks_0_img_attn_qkv.alpha"), "F32") == [4.0]  # scale 1

    onetrainer = [_t("lora_transformer_single_transformer_blocks_0_attn_to_q.lora_down.weight", (2, h)),
                  _t("lora_transformer_single_transformer_blocks_0_attn_to_q.lora_up.weight", (h, 2)),
                  _t("lora_transformer_single_transformer_blocks_0_attn_to_q.alpha", (), 1.0),
                  _t("lora_te2_encoder_block_0_layer_0_SelfAttention_q.lora_down.weight", (2, 4096)),
                  _t("lora_te2_encoder_block_0_layer_0_SelfAttention_q.lora_up.weight", (4096, 2)),
                  _t("lora_te2_encoder_block_0_layer_0_SelfAttention_q.alpha", (), 1.0)]
    lf = open_lora(_write(tmp_path / "ot.safetensors", onetrainer))
    assert lf.layout == "onetrainer" and {m.part for m in lf.modules} == {"transformer", "te3"}
    convert(tmp_path / "ot.safetensors", tmp_path / "ot_k.safetensors", ConvertOptions(to="kohya"))
    back = read_header(tmp_path / "ot_k.safetensors")
    assert "lora_te3_encoder_block_0_layer_0_SelfAttention_q.alpha" in back.tensors

    simpletuner = [_t("transformer.transformer_blocks.0.attn.to_out.0.lora_A.weight", (4, h)),
                   _t("transformer.transformer_blocks.0.attn.to_out.0.lora_B.weight", (h, 4)),
                   _t("transformer.transformer_blocks.0.attn.to_out.0.alpha", (), 2.0)]
    lf = open_lora(_write(tmp_path / "st.safetensors", simpletuner))
    assert lf.layout == "diffusers" and lf.modules[0].scale == 0.5


def test_refusals_name_file_and_key(tmp_path) -> None:
    bad = [_t("lora_unet_double_blocks_0_img_attn_qkv.lora_down.weight", (4, 3072)),
           _t("lora_unet_double_blocks_0_img_attn_qkv.hada_w1_a", (9216, 4))]
    with pytest.raises(UserError, match=r"hada_w1_a: LoHa"):
        open_lora(_write(tmp_path / "a.safetensors", bad))
    mixed = [_t("lora_unet_double_blocks_0_img_attn_proj.lora_down.weight", (4, 3072)),
             _t("lora_unet_double_blocks_0_img_attn_proj.lora_up.weight", (3072, 4)),
             _t("transformer.transformer_blocks.0.attn.to_q.lora_A.weight", (4, 3072)),
             _t("transformer.transformer_blocks.0.attn.to_q.lora_B.weight", (3072, 4))]
    with pytest.raises(UserError, match="mixes LoRA layouts"):
        open_lora(_write(tmp_path / "b.safetensors", mixed))
    wrong = [_t("lora_unet_double_blocks_0_img_attn_proj.lora_down.weight", (4, 3072)),
             _t("lora_unet_double_blocks_0_img_attn_proj.lora_up.weight", (3072, 4)),
             _t("lora_unet_double_blocks_0_img_attn_qkv.lora_down.weight", (4, 3072)),
             _t("lora_unet_double_blocks_0_img_attn_qkv.lora_up.weight", (3000, 4))]
    with pytest.raises(UserError, match="shape mismatch"):
        open_lora(_write(tmp_path / "c.safetensors", wrong))
    src = _kohya_tiny(tmp_path / "t5.safetensors", parts=("te3", "transformer"))
    with pytest.raises(UserError, match=r"T5-XXL.*--drop-t5"):
        convert(src, tmp_path / "o.safetensors", ConvertOptions(to="ai-toolkit"))


def _problems(lf, target) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for mod, reason in check_lora(lf, target).problems:
        out.setdefault(reason.split(":")[0], set()).add(mod)
    return out


def test_check_knows_what_each_consumer_drops(tmp_path) -> None:
    src = _kohya_tiny(tmp_path / "k.safetensors")
    lf = open_lora(src)
    res = check_lora(lf, "diffusers")
    reasons = {r for _, r in res.problems}
    dropped = {m for m, _ in res.problems}
    assert any(r.startswith("T5-XXL LoRA") for r in reasons)
    assert any(r.startswith("embedder/final-layer LoRA") for r in reasons)
    assert "lora_unet_img_in" in dropped and "lora_unet_final_layer_linear" in dropped
    assert "lora_unet_double_blocks_0_img_attn_qkv" not in dropped
    assert check_lora(lf, "comfyui").ok
    sd = check_lora(lf, "sd-scripts")
    assert {m for m, _ in sd.problems} == {"lora_unet_final_layer_linear", "lora_unet_final_layer_adaLN_modulation_1"}
    assert not check_lora(lf, "ai-toolkit").ok
    # an ai-toolkit file: scale 1 everywhere, loads in ai-toolkit; diffusers with metadata scales is not ai-toolkit
    convert(src, tmp_path / "a.safetensors", ConvertOptions(to="ai-toolkit", drop_t5=True))
    ait = open_lora(tmp_path / "a.safetensors")
    assert {r for _, r in check_lora(ait, "ai-toolkit").problems} == {
        "ai-toolkit's FLUX network has no text-encoder modules: not loaded"}
    convert(src, tmp_path / "d.safetensors", ConvertOptions(to="diffusers"))
    d = open_lora(tmp_path / "d.safetensors")
    assert any("ignores alpha" in r for _, r in check_lora(d, "ai-toolkit").problems)
    assert any("lora_adapter_metadata, which ComfyUI ignores" in r for _, r in check_lora(d, "comfyui").problems)
    # sd-scripts needs .alpha everywhere
    sf = read_header(_kohya_tiny(tmp_path / "n.safetensors"))
    _write(tmp_path / "n.safetensors", [OutTensor(k, e.dtype, e.shape, sf.read_bytes(k)) for k, e in sf.tensors.items()
                                        if not k.endswith(".alpha")])
    assert all("KeyError" in r for _, r in check_lora(open_lora(tmp_path / "n.safetensors"), "sd-scripts").problems)


def test_chroma_t5_and_inspect(tmp_path) -> None:
    names = {m.kohya_name for m in TABLE.modules if m.part == "te3" or (m.part == "transformer" and "_attn_" in
                                                                         m.kohya_name)}
    src = _kohya_tiny(tmp_path / "c.safetensors", names=names, meta={"ss_model_type": "chroma"})
    lf = open_lora(src)
    assert lf.arch == "chroma"
    assert any("Chroma has no CLIP-L" in r for _, r in check_lora(lf, "comfyui").problems)
    data = inspect_data(lf)
    assert data["arch"] == "chroma" and data["flux"]["variant"] == "chroma"
    assert data["flux"]["text_encoders"] == {"clip_l": 0, "t5xxl": 14}
    assert data["flux"]["fused_modules"] == 4 and data["flux"]["widths"]["hidden"] == 16
    bad = _kohya_tiny(tmp_path / "bad.safetensors", names={"lora_unet_double_blocks_0_img_mod_lin"},
                      meta={"ss_model_type": "chroma"})
    with pytest.raises(UserError, match="Chroma"):
        open_lora(bad)


def test_cli_convert_inspect_check_json(tmp_path) -> None:
    src = _kohya_tiny(tmp_path / "k.safetensors")
    runner = CliRunner()
    r = runner.invoke(main, ["convert", str(src), str(tmp_path / "c.safetensors"), "--to", "comfyui",
                             "--format", "json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert (out["from"], out["to"], out["arch"], out["modules"]) == ("kohya", "comfyui", "flux1", len(TABLE.modules))
    assert out["bytes_rewritten"] == 0 and out["bytes_copied"] > 0
    r = runner.invoke(main, ["convert", str(src), str(tmp_path / "a.safetensors"), "--to", "ai-toolkit"])
    assert isinstance(r.exception, UserError) and "--drop-t5" in str(r.exception)
    r = runner.invoke(main, ["convert", str(src), str(tmp_path / "a.safetensors"), "--to", "ai-toolkit", "--drop-t5",
                             "--format", "json"])
    assert r.exit_code == 0 and any("T5" in n for n in json.loads(r.output)["notes"])
    r = runner.invoke(main, ["inspect", str(tmp_path / "c.safetensors"), "--format", "json"])
    assert json.loads(r.output)["flux"]["fused_modules"] == 2 * 2 + 2
    r = runner.invoke(main, ["check", str(src), "--target", "diffusers", "--format", "json"])
    assert r.exit_code == 1 and json.loads(r.output)["arch"] == "flux1"
    r = runner.invoke(main, ["check", str(src), "--target", "comfyui"])
    assert r.exit_code == 0, r.output


def test_verify_merges_flux_deltas(tmp_path) -> None:
    pytest.importorskip("torch")
    from lora_compat.weights.verify import verify_conversion

    src = _kohya_tiny(tmp_path / "k.safetensors", parts=("te1", "transformer"))
    convert(src, tmp_path / "d.safetensors", ConvertOptions(to="diffusers"))
    assert verify_conversion(src, tmp_path / "d.safetensors").ok
    # a broken conversion is caught: one part's up scaled
    sf = read_header(tmp_path / "d.safetensors")
    key = "transformer.single_transformer_blocks.1.attn.to_k.lora_B.weight"
    tensors = [OutTensor(k, e.dtype, e.shape, sf.read_bytes(k) if k != key else
                         encode_values([0.02] * e.numel, e.dtype)) for k, e in sf.tensors.items()]
    _write(tmp_path / "bad.safetensors", tensors, dict(sf.metadata))
    res = verify_conversion(src, tmp_path / "bad.safetensors")
    assert [m for m, _ in res.failures] == ["lora_unet_single_blocks_1_linear1"]
