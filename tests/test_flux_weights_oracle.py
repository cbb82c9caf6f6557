"""Oracles for FLUX conversion: real consumers load our outputs on tiny models with FLUX.1's real block layout.

A tiny diffusers ``FluxTransformer2DModel`` (2 double, 2 single blocks, hidden 16), a tiny CLIP-L and a tiny T5
encoder, all built here. A kohya file over sd-scripts' module set at those widths (CLIP-L, T5, double and single
blocks, the in_dims embedders, and the final layer that other trainers write), per-module ranks and alphas, written
with the safetensors library. The reference is a plain merge W += alpha/r * up @ down on the BFL modules, mapped to
diffusers row ranges (the final adaLN's halves swapped). Our diffusers file through ``FluxPipeline.load_lora_weights``
and our PEFT folders through ``PeftModel.from_pretrained`` must reproduce it (max abs diff <= 1e-5, float32);
diffusers' own kohya-FLUX loader must read our kohya output.
"""

from __future__ import annotations

import copy

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")
pytest.importorskip("peft")
pytest.importorskip("transformers")
st = pytest.importorskip("safetensors.torch")

from lora_compat.arch import flux as fa  # noqa: E402
from lora_compat.weights.convert import ConvertOptions, convert  # noqa: E402

pytestmark = pytest.mark.slow
TOL = 1e-5
WIDTHS = fa.FluxWidths(hidden=16, mlp=64, in_channels=8, out_channels=8, context=12, vec=6, double=2, single=2)
CLIP = fa.ClipWidths(hidden=16, mlp=24, layers=2)
T5 = fa.T5Widths(d_model=16, inner=8, d_ff=24, layers=2)


class Tiny:
    def __init__(self) -> None:
        import diffusers
        import transformers

        torch.manual_seed(0)
        self.transformer = diffusers.FluxTransformer2DModel(
            patch_size=1, in_channels=8, num_layers=2, num_single_layers=2, attention_head_dim=8, num_attention_heads=2,
            joint_attention_dim=12, pooled_projection_dim=6, guidance_embeds=True, axes_dims_rope=(2, 2, 4)).eval()
        self.clip = transformers.CLIPTextModel(transformers.CLIPTextConfig(
            hidden_size=16, intermediate_size=24, num_hidden_layers=2, num_attention_heads=2, vocab_size=100,
            max_position_embeddings=16, bos_token_id=0, eos_token_id=1, pad_token_id=1)).eval()
        self.t5 = transformers.T5EncoderModel(transformers.T5Config(
            d_model=16, d_kv=4, num_heads=2, d_ff=24, num_layers=2, feed_forward_proj="gated-gelu",
            vocab_size=100)).eval()

    def copy(self) -> Tiny:
        return copy.deepcopy(self)


@pytest.fixture(scope="module")
def tiny() -> Tiny:
    return Tiny()


def _table() -> fa.FluxTable:
    return fa.flux_table("flux1-dev", WIDTHS, CLIP, T5)


def _root_and_path(t: Tiny, part: str, path: str):
    if part == "transformer":
        return t.transformer, path
    if part == "te1":
        return t.clip, path if hasattr(t.clip, "text_model") else path.removeprefix("text_model.")
    return t.t5, path


def _make_kohya(path, *, parts=("te1", "te3", "transformer"), groups=None, uniform: bool = False,
                skip=()) -> dict:
    """Random kohya LoRA over the table's modules; returns {kohya name: (scale, up, down)}."""
    gen = torch.Generator().manual_seed(1)
    tensors, ref = {}, {}
    for m in _table().modules:
        if m.part not in parts or (groups is not None and m.group not in groups and m.part == "transformer"):
            continue
        if m.kohya_name.endswith(skip):
            continue
        r, alpha = 2, 1.0
        if not uniform and float(torch.rand(1, generator=gen)) < 0.4:
            r = int(torch.randint(1, 4, (1,), generator=gen))
            alpha = float(torch.randint(1, 9, (1,), generator=gen)) / 2
        down = torch.randn(r, m.in_features, generator=gen) * 0.3
        up = torch.randn(m.out_features, r, generator=gen) * 0.3
        tensors.update({f"{m.kohya_name}.lora_down.weight": down, f"{m.kohya_name}.lora_up.weight": up,
                        f"{m.kohya_name}.alpha": torch.tensor(alpha)})
        ref[m.kohya_name] = (alpha / r, up, down)
    st.save_file(tensors, str(path), metadata={"ss_network_module": "networks.lora_flux",
                                               "ss_base_model_version": "flux1"})
    return ref


def _merged(t: Tiny, ref: dict, only=None) -> Tiny:
    out = t.copy()
    table = _table()
    for name, (scale, up, down) in ref.items():
        m = table.by_kohya[name]
        if only is not None and not only(m):
            continue
        dw = scale * up @ down
        for p in m.parts:
            rows = dw[p.offset:p.offset + p.out_features]
            if p.swap:  # BFL final adaLN (shift, scale) is diffusers' norm_out.linear (scale, shift)
                half = rows.shape[0] // 2
                rows = torch.cat([rows[half:], rows[:half]])
            root, path = _root_and_path(out, p.part, p.diffusers_path)
            with torch.no_grad():
                dict(root.named_modules())[path].weight += rows
    return out


def _inputs():
    g = torch.Generator().manual_seed(2)
    kw = {"hidden_states": torch.randn(1, 6, 8, generator=g),
          "encoder_hidden_states": torch.randn(1, 5, 12, generator=g),
          "pooled_projections": torch.randn(1, 6, generator=g), "timestep": torch.tensor([0.5]),
          "img_ids": torch.randint(0, 4, (6, 3), generator=g).float(), "txt_ids": torch.zeros(5, 3),
          "guidance": torch.tensor([3.5])}
    return kw, torch.randint(2, 100, (1, 7), generator=g)


def _outputs(transformer, clip, t5, inputs):
    kw, ids = inputs
    with torch.no_grad():
        return (transformer(**kw).sample, clip(ids)[0] if clip is not None else None,
                t5(ids)[0] if t5 is not None else None)


def _close(a, b) -> None:
    assert (a - b).abs().max().item() <= TOL


def _pipe(t: Tiny):
    from diffusers import FluxPipeline

    return FluxPipeline(scheduler=None, vae=None, text_encoder=t.clip, tokenizer=None, text_encoder_2=t.t5,
                        tokenizer_2=None, transformer=t.transformer)


def test_diffusers_and_peft_load_our_outputs_exactly(tiny: Tiny, tmp_path) -> None:
    src = tmp_path / "kohya.safetensors"
    ref = _make_kohya(src)
    inputs = _inputs()
    want = _outputs(*(lambda m: (m.transformer, m.clip, m.t5))(_merged(tiny, ref)), inputs)
    base = _outputs(tiny.transformer, tiny.clip, tiny.t5, inputs)
    for w, b in zip(want, base, strict=True):
        assert (w - b).abs().max().item() > 1e-3  # the LoRA really changes every model

    # diffusers: FluxPipeline.load_lora_weights (transformer + CLIP-L; it never loads T5)
    rep = convert(src, tmp_path / "d.safetensors", ConvertOptions(to="diffusers"))
    assert any("text_encoder_2" in n for n in rep.notes)
    t = tiny.copy()
    pipe = _pipe(t)
    pipe.load_lora_weights(str(tmp_path / "d.safetensors"))
    got = _outputs(pipe.transformer, pipe.text_encoder, None, inputs)
    _close(got[0], want[0])
    _close(got[1], want[1])

    # PEFT: one adapter folder per component, T5 included
    from peft import PeftModel

    convert(src, tmp_path / "p", ConvertOptions(to="peft"))
    t = tiny.copy()
    tr = PeftModel.from_pretrained(t.transformer, str(tmp_path / "p" / "transformer"))
    clip = PeftModel.from_pretrained(t.clip, str(tmp_path / "p" / "text_encoder"))
    t5 = PeftModel.from_pretrained(t.t5, str(tmp_path / "p" / "text_encoder_2"))
    for g, w in zip(_outputs(tr, clip, t5, inputs), want, strict=True):
        _close(g, w)

    # ai-toolkit (baked, no alpha): diffusers loads it too; the T5 part has to be dropped explicitly
    convert(src, tmp_path / "a.safetensors", ConvertOptions(to="ai-toolkit", drop_t5=True))
    t = tiny.copy()
    pipe = _pipe(t)
    pipe.load_lora_weights(str(tmp_path / "a.safetensors"))
    got = _outputs(pipe.transformer, pipe.text_encoder, None, inputs)
    _close(got[0], want[0])
    _close(got[1], want[1])


def test_diffusers_kohya_loader_reads_our_kohya_output(tiny: Tiny, tmp_path) -> None:
    """Our kohya output (re-fused from PEFT) through diffusers' own kohya-FLUX converter: the double/single blocks
    and CLIP-L it loads match the reference (it drops embedders, the final layer and T5: see check). Its converter
    hard-codes linear1's split as [3072, 3072, 3072, 12288], so a tiny model's linear1 cannot go through it."""
    src = tmp_path / "kohya.safetensors"
    ref = _make_kohya(src, parts=("te1", "transformer"), groups=("double", "single"), skip=("_linear1",))
    inputs = _inputs()
    merged = _merged(tiny, ref)
    want = _outputs(merged.transformer, merged.clip, None, inputs)
    convert(src, tmp_path / "p", ConvertOptions(to="peft"))
    convert(tmp_path / "p", tmp_path / "k.safetensors", ConvertOptions(to="kohya"))
    assert st.load_file(str(tmp_path / "k.safetensors")).keys() == st.load_file(str(src)).keys()
    t = tiny.copy()
    pipe = _pipe(t)
    pipe.load_lora_weights(str(tmp_path / "k.safetensors"))
    got = _outputs(pipe.transformer, pipe.text_encoder, None, inputs)
    _close(got[0], want[0])
    _close(got[1], want[1])


def test_block_diagonal_fusion_of_independent_parts_is_exact(tiny: Tiny, tmp_path) -> None:
    """A diffusers-trained LoRA (independent q/k/v downs, unequal ranks, no proj_mlp) -> kohya -> PEFT: the kohya
    file fuses block-diagonally at rank sum(r_j) with the missing parts zero-filled, and still merges exactly."""
    gen = torch.Generator().manual_seed(7)
    table = _table()
    tensors = {}
    t = tiny.copy()
    for m in table.modules:
        if m.part != "transformer" or m.group not in ("double", "single"):
            continue
        for p in m.parts:
            if p.diffusers_path.endswith("proj_mlp"):
                continue
            r = 1 + (p.position + (m.block or 0)) % 3
            down = torch.randn(r, m.in_features, generator=gen) * 0.3
            up = torch.randn(p.out_features, r, generator=gen) * 0.3
            tensors[f"transformer.{p.diffusers_path}.lora_A.weight"] = down
            tensors[f"transformer.{p.diffusers_path}.lora_B.weight"] = up
            with torch.no_grad():
                dict(t.transformer.named_modules())[p.diffusers_path].weight += up @ down
    st.save_file(tensors, str(tmp_path / "ait.safetensors"))
    inputs = _inputs()
    want = _outputs(t.transformer, None, None, inputs)[0]
    rep = convert(tmp_path / "ait.safetensors", tmp_path / "k.safetensors", ConvertOptions(to="kohya"))
    assert any("block-diagonally" in n for n in rep.notes) and any("zero-filled" in n for n in rep.notes)
    k = st.load_file(str(tmp_path / "k.safetensors"))
    assert k["lora_unet_single_blocks_0_linear1.lora_up.weight"].shape == (3 * 16 + 64, 1 + 2 + 3)
    assert not k["lora_unet_single_blocks_0_linear1.lora_up.weight"][48:].any()
    convert(tmp_path / "k.safetensors", tmp_path / "p", ConvertOptions(to="peft"))
    from peft import PeftModel

    tr = PeftModel.from_pretrained(tiny.copy().transformer, str(tmp_path / "p" / "transformer"))
    _close(_outputs(tr, None, None, inputs)[0], want)
