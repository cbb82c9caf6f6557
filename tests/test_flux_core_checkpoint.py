"""BFL-layout FLUX.1 DiT checkpoints -> diffusers: equal to diffusers' own converter at real size, and exact
round trips of the tiny models through the test-only inverse."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")

from lora_compat.train.flux.checkpoint import (  # noqa: E402
    bfl_transformer_to_diffusers,
    has_guidance_embedder,
    is_bfl_transformer,
    transformer_config_from_bfl,
)
from lora_compat.train.flux.tiny import tiny_transformer_config  # noqa: E402

from flux_layouts import diffusers_to_bfl_transformer  # noqa: E402


def _real_size_bfl_keys(num_double: int, num_single: int, guidance: bool) -> dict:
    """Every key of a real FLUX.1 checkpoint with its real output size and a 1-wide input (cheap), each tensor
    distinct so a swapped row block would be seen."""
    inner, mlp = 3072, 12288
    shapes = {"img_in": inner, "txt_in": inner, "time_in.in_layer": inner, "time_in.out_layer": inner,
              "vector_in.in_layer": inner, "vector_in.out_layer": inner, "final_layer.linear": 64,
              "final_layer.adaLN_modulation.1": 2 * inner}
    if guidance:
        shapes.update({"guidance_in.in_layer": inner, "guidance_in.out_layer": inner})
    for i in range(num_double):
        for s in ("img", "txt"):
            shapes.update({f"double_blocks.{i}.{s}_mod.lin": 6 * inner, f"double_blocks.{i}.{s}_attn.qkv": 3 * inner,
                           f"double_blocks.{i}.{s}_attn.proj": inner, f"double_blocks.{i}.{s}_mlp.0": mlp,
                           f"double_blocks.{i}.{s}_mlp.2": inner})
    for i in range(num_single):
        shapes.update({f"single_blocks.{i}.linear1": 3 * inner + mlp, f"single_blocks.{i}.linear2": inner,
                       f"single_blocks.{i}.modulation.lin": 3 * inner})
    sd, n = {}, 0
    for module, out in shapes.items():
        for p in ("weight", "bias"):
            t = torch.arange(out, dtype=torch.float32) + n * 100000
            sd[f"{module}.{p}"] = t if p == "bias" else t[:, None]
            n += 1
    for i in range(num_double):
        for s in ("img", "txt"):
            for q in ("query", "key"):
                sd[f"double_blocks.{i}.{s}_attn.norm.{q}_norm.scale"] = torch.full((128,), float(n))
                n += 1
    for i in range(num_single):
        for q in ("query", "key"):
            sd[f"single_blocks.{i}.norm.{q}_norm.scale"] = torch.full((128,), float(n))
            n += 1
    return {"model.diffusion_model." + k: v for k, v in sd.items()}


@pytest.mark.parametrize("guidance", [True, False])
def test_equals_diffusers_converter_at_real_size(guidance) -> None:
    from diffusers.loaders.single_file_utils import convert_flux_transformer_checkpoint_to_diffusers

    ckpt = _real_size_bfl_keys(2, 3, guidance)
    assert is_bfl_transformer(ckpt) and has_guidance_embedder([k.split(".", 2)[-1] for k in ckpt]) is guidance
    theirs = convert_flux_transformer_checkpoint_to_diffusers(dict(ckpt))
    ours = bfl_transformer_to_diffusers(dict(ckpt))
    assert list(ours) == list(theirs) or sorted(ours) == sorted(theirs)
    for key, value in theirs.items():
        assert torch.equal(ours[key], value), key


@pytest.mark.parametrize("variant", ["dev", "schnell"])
def test_tiny_round_trip(variant) -> None:
    from diffusers import FluxTransformer2DModel

    torch.manual_seed(0)
    cfg = tiny_transformer_config(variant, 2, 3)
    model = FluxTransformer2DModel(**cfg)
    sd = model.state_dict()
    bfl = diffusers_to_bfl_transformer(sd, prefix="model.diffusion_model.")
    assert "model.diffusion_model.double_blocks.1.img_attn.qkv.weight" in bfl
    back = bfl_transformer_to_diffusers(bfl)
    assert sorted(back) == sorted(sd)
    for key in sd:
        assert torch.equal(back[key], sd[key]), key
    base = dict(cfg, num_layers=19, num_single_layers=38, guidance_embeds=True)
    assert transformer_config_from_bfl(bfl, base) == cfg
    with pytest.raises(ValueError, match=r"inner_dim 32 \(config 3072\)"):
        transformer_config_from_bfl(bfl, dict(base, num_attention_heads=24, attention_head_dim=128))
