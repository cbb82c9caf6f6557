"""Oracle for SD3 conversion: real consumers load our outputs on a tiny SD3.5-medium-shaped model.

A tiny diffusers ``SD3Transformer2DModel`` (3 joint blocks, hidden 8, ``attn2`` in block 0, the last block's context
half pre-only, RMS q/k norms), tiny CLIP-L and CLIP-G (``CLIPTextModelWithProjection``) and a tiny T5 encoder, all
built here. A kohya file over sd-scripts' ``networks.lora_sd3`` module set at those widths (CLIP-L, CLIP-G, T5, every
joint-block Linear, the ``emb_dims`` embedders with the 2x2 Conv2d ``x_embedder`` and the final layer), per-module
ranks and alphas. The reference applies the kohya ΔW = alpha/r · up @ down to the **SAI-named fused weights** (q/k/v
rows stacked, the pre-only and final modulations in SAI's (shift, scale) order, built from the diffusers weights)
and maps the result back to the split diffusers weights. Our diffusers file through
``StableDiffusion3Pipeline.load_lora_weights`` and our PEFT folders through ``PeftModel.from_pretrained`` must give
the same outputs (max abs diff <= 1e-5, float32).
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
from lora_compat.arch import sd3  # noqa: E402
from lora_compat.weights.convert import ConvertOptions, convert  # noqa: E402
from lora_compat.weights.sd3_synth import synth_sd3_kohya  # noqa: E402

pytestmark = pytest.mark.slow
TOL = 1e-5
W = sd3.Sd3Widths(depth=3, hidden=8, context=12, adm=6, in_channels=4, attn2_blocks=1, out_channels=4)
TABLE = sd3.sd3_table("sd3.5-medium", W, fa.ClipWidths(8, 16, 2), fa.ClipWidths(12, 20, 2), fa.T5Widths(8, 8, 16, 2))
PARTS = {"transformer": "transformer", "te1": "clip_l", "te2": "clip_g", "te3": "t5"}


class Tiny:
    def __init__(self) -> None:
        import diffusers
        import transformers

        torch.manual_seed(0)
        self.transformer = diffusers.SD3Transformer2DModel(
            sample_size=8, patch_size=2, in_channels=4, num_layers=3, attention_head_dim=4, num_attention_heads=2,
            joint_attention_dim=12, caption_projection_dim=8, pooled_projection_dim=6, out_channels=4,
            pos_embed_max_size=8, dual_attention_layers=(0,), qk_norm="rms_norm").eval()

        def clip(hidden: int, mlp: int) -> transformers.CLIPTextModelWithProjection:
            return transformers.CLIPTextModelWithProjection(transformers.CLIPTextConfig(
                hidden_size=hidden, intermediate_size=mlp, num_hidden_layers=2, num_attention_heads=2, vocab_size=100,
                max_position_embeddings=16, projection_dim=hidden, bos_token_id=0, eos_token_id=1,
                pad_token_id=1)).eval()

        self.clip_l, self.clip_g = clip(8, 16), clip(12, 20)
        self.t5 = transformers.T5EncoderModel(transformers.T5Config(
            d_model=8, d_kv=4, num_heads=2, d_ff=16, num_layers=2, feed_forward_proj="gated-gelu",
            vocab_size=100)).eval()
        with torch.no_grad():   # a visible base for every module (diffusers zero-inits some biases, not weights)
            for p in self.transformer.parameters():
                p.add_(torch.randn_like(p) * 0.02)

    def copy(self) -> Tiny:
        return copy.deepcopy(self)


@pytest.fixture(scope="module")
def tiny() -> Tiny:
    return Tiny()


def _weight(t: Tiny, part: str, path: str) -> torch.nn.Parameter:
    root = getattr(t, PARTS[part])
    mods = dict(root.named_modules())
    if path not in mods:   # transformers 5 flattened CLIP (no text_model.)
        path = path.removeprefix("text_model.")
    return mods[path].weight


def _sai_merge(t: Tiny, kohya_path) -> Tiny:
    """The kohya LoRA merged into the SAI (fused) weights built from ``t``, written back to diffusers weights."""
    out = t.copy()
    sd = st.load_file(str(kohya_path))
    with torch.no_grad():
        for m in TABLE.modules:
            if f"{m.kohya_name}.lora_down.weight" not in sd:
                continue
            blocks = []
            for p in m.parts:
                w = _weight(out, p.part, p.diffusers_path).detach().clone()
                if p.swap:   # diffusers (scale, shift) -> SAI (shift, scale)
                    half = w.shape[0] // 2
                    w = torch.cat([w[half:], w[:half]])
                blocks.append(w)
            fused = torch.cat(blocks)
            down, up = sd[f"{m.kohya_name}.lora_down.weight"], sd[f"{m.kohya_name}.lora_up.weight"]
            r = down.shape[0]
            scale = float(sd[f"{m.kohya_name}.alpha"]) / r
            fused += (scale * up.reshape(up.shape[0], r) @ down.reshape(r, -1)).reshape(fused.shape)
            for p in m.parts:
                rows = fused[p.offset:p.offset + p.out_features]
                if p.swap:
                    half = rows.shape[0] // 2
                    rows = torch.cat([rows[half:], rows[:half]])
                _weight(out, p.part, p.diffusers_path).copy_(rows)
    return out


def _inputs():
    g = torch.Generator().manual_seed(2)
    kw = {"hidden_states": torch.randn(1, 4, 8, 8, generator=g), "encoder_hidden_states": torch.randn(1, 5, 12,
                                                                                                       generator=g),
          "pooled_projections": torch.randn(1, 6, generator=g), "timestep": torch.tensor([500.0])}
    return kw, torch.randint(2, 100, (1, 7), generator=g)


def _outputs(transformer, clip_l, clip_g, t5, inputs):
    kw, ids = inputs
    with torch.no_grad():
        return (transformer(**kw).sample, clip_l(ids)[0] if clip_l is not None else None,
                clip_g(ids)[0] if clip_g is not None else None, t5(ids)[0] if t5 is not None else None)


def _close(a, b) -> None:
    assert (a - b).abs().max().item() <= TOL


def _kohya(path) -> None:
    """sd-scripts' module set at the tiny widths, F32, several ranks and alphas (int64 and float)."""
    ranks = {"lora_unet_joint_blocks_0_x_block_attn2_qkv": 3, "lora_unet_joint_blocks_2_context_block_attn_qkv": 1,
             "lora_te2_text_model_encoder_layers_1_self_attn_q_proj": 4}
    synth_sd3_kohya(path, TABLE, rank=2, alpha=3.0, train_t5xxl=True, emb_dims=(2, 1, 3, 2, 2, 1), ranks=ranks,
                    seed=7)
    sd = st.load_file(str(path))
    for i, k in enumerate(sorted(k for k in sd if k.endswith(".alpha"))):
        if i % 4 == 0:
            sd[k] = torch.tensor(1 + i % 5)   # int64, as sd-scripts' default alpha 1 writes it
        sd[k] = sd[k] * 10 if sd[k].dtype != torch.int64 and i % 3 == 0 else sd[k]
    st.save_file(sd, str(path), metadata={"ss_network_module": "networks.lora_sd3"})


def test_diffusers_and_peft_load_our_outputs_exactly(tiny: Tiny, tmp_path) -> None:
    src = tmp_path / "kohya.safetensors"
    _kohya(src)
    inputs = _inputs()
    ref = _sai_merge(tiny, src)
    want = _outputs(ref.transformer, ref.clip_l, ref.clip_g, ref.t5, inputs)
    base = _outputs(tiny.transformer, tiny.clip_l, tiny.clip_g, tiny.t5, inputs)
    for w, b in zip(want, base, strict=True):
        assert (w - b).abs().max().item() > 1e-3  # the LoRA really changes every model

    # diffusers: StableDiffusion3Pipeline.load_lora_weights (transformer, CLIP-L, CLIP-G; never T5)
    from diffusers import StableDiffusion3Pipeline

    convert(src, tmp_path / "d.safetensors", ConvertOptions(to="diffusers"))
    t = tiny.copy()
    pipe = StableDiffusion3Pipeline(scheduler=None, vae=None, text_encoder=t.clip_l, tokenizer=None,
                                    text_encoder_2=t.clip_g, tokenizer_2=None, text_encoder_3=t.t5, tokenizer_3=None,
                                    transformer=t.transformer)
    pipe.load_lora_weights(str(tmp_path / "d.safetensors"))
    got = _outputs(pipe.transformer, pipe.text_encoder, pipe.text_encoder_2, None, inputs)
    for i in range(3):
        _close(got[i], want[i])

    # PEFT: one adapter folder per component, T5 included
    from peft import PeftModel

    convert(src, tmp_path / "p", ConvertOptions(to="peft"))
    t = tiny.copy()
    models = [PeftModel.from_pretrained(getattr(t, attr), str(tmp_path / "p" / sd3.DIFFUSERS_COMPONENT[part]))
              for part, attr in PARTS.items()]
    for g, w in zip(_outputs(*models, inputs), want, strict=True):
        _close(g, w)


def test_kohya_back_from_diffusers_matches_the_sai_merge(tiny: Tiny, tmp_path) -> None:
    """diffusers -> kohya (re-fused at the original rank) merged on the SAI weights gives the same model."""
    src = tmp_path / "kohya.safetensors"
    _kohya(src)
    convert(src, tmp_path / "d.safetensors", ConvertOptions(to="diffusers"))
    convert(tmp_path / "d.safetensors", tmp_path / "k.safetensors", ConvertOptions(to="kohya"))
    inputs = _inputs()
    a, b = _sai_merge(tiny, src), _sai_merge(tiny, tmp_path / "k.safetensors")
    for x, y in zip(_outputs(a.transformer, a.clip_l, a.clip_g, a.t5, inputs),
                    _outputs(b.transformer, b.clip_l, b.clip_g, b.t5, inputs), strict=True):
        assert torch.equal(x, y)
