"""FLUX.1 DiT checkpoints in Black Forest Labs' layout (``flux1-dev.safetensors``) -> diffusers'
``FluxTransformer2DModel`` state dict.

diffusers ships the same conversion (``convert_flux_transformer_checkpoint_to_diffusers``), but it hard-codes
the real model's width (3072 / mlp 12288) to split the fused single-block ``linear1``; this one reads every
width from the tensors, so it also loads checkpoints of other widths (the tiny test models). Key for key and
value for value it equals diffusers' on real-size checkpoints (tested). Tensors are moved, never copied.
"""

from __future__ import annotations

from typing import Any

BFL_PREFIXES = ("model.diffusion_model.", "diffusion_model.")


def strip_bfl_prefix(state_dict: dict[str, Any]) -> dict[str, Any]:
    """Drop the ``model.diffusion_model.`` (ComfyUI full checkpoint) or ``diffusion_model.`` prefix."""
    out = {}
    for key, value in state_dict.items():
        for prefix in BFL_PREFIXES:
            if key.startswith(prefix):
                key = key[len(prefix):]
                break
        out[key] = value
    return out


def is_bfl_transformer(keys: Any) -> bool:
    """True when the keys are a BFL FLUX.1 DiT (``double_blocks.N.img_attn.qkv.weight``...)."""
    return any(k.split("double_blocks.", 1)[-1].endswith("img_attn.qkv.weight") for k in keys if "double_blocks." in k)


def is_chroma(keys: Any) -> bool:
    """True for Chroma's DiT (a ``distilled_guidance_layer`` instead of per-block modulation Linears)."""
    return any(k.split(".", 1)[0] == "distilled_guidance_layer" or ".distilled_guidance_layer." in k for k in keys)


def has_guidance_embedder(keys: Any) -> bool:
    """dev has ``guidance_in``; schnell does not (sd-scripts' ``analyze_checkpoint_state``)."""
    return any(k.startswith("guidance_in.") or ".guidance_in." in k for k in keys)


def _block_count(keys: Any, prefix: str) -> int:
    ids = {int(k.split(".")[1]) for k in keys if k.startswith(prefix)}
    return max(ids) + 1 if ids else 0


def _swap_scale_shift(weight: Any) -> Any:
    # BFL's final AdaLN gives (shift, scale); diffusers' AdaLayerNormContinuous expects (scale, shift)
    import torch

    shift, scale = weight.chunk(2, dim=0)
    return torch.cat([scale, shift], dim=0)


def bfl_transformer_to_diffusers(checkpoint: dict[str, Any]) -> dict[str, Any]:
    """Convert a BFL FLUX.1 DiT state dict (prefixes allowed) into ``FluxTransformer2DModel``'s keys.

    Raises ``KeyError`` naming the first missing BFL key.
    """
    import torch

    sd = strip_bfl_prefix(checkpoint)
    out: dict[str, Any] = {}

    def move(src: str, dst: str) -> None:
        out[dst] = sd.pop(src)

    for bfl, diff in (("time_in", "time_text_embed.timestep_embedder"), ("vector_in", "time_text_embed.text_embedder"),
                      ("guidance_in", "time_text_embed.guidance_embedder")):
        if bfl == "guidance_in" and not has_guidance_embedder(sd):
            continue
        for layer, linear in (("in_layer", "linear_1"), ("out_layer", "linear_2")):
            for p in ("weight", "bias"):
                move(f"{bfl}.{layer}.{p}", f"{diff}.{linear}.{p}")
    for p in ("weight", "bias"):
        move(f"txt_in.{p}", f"context_embedder.{p}")
        move(f"img_in.{p}", f"x_embedder.{p}")

    for i in range(_block_count(list(sd), "double_blocks.")):
        src, dst = f"double_blocks.{i}.", f"transformer_blocks.{i}."
        for p in ("weight", "bias"):
            move(f"{src}img_mod.lin.{p}", f"{dst}norm1.linear.{p}")
            move(f"{src}txt_mod.lin.{p}", f"{dst}norm1_context.linear.{p}")
            for stream, names in (("img", ("to_q", "to_k", "to_v")),
                                  ("txt", ("add_q_proj", "add_k_proj", "add_v_proj"))):
                chunks = torch.chunk(sd.pop(f"{src}{stream}_attn.qkv.{p}"), 3, dim=0)
                for name, chunk in zip(names, chunks, strict=True):
                    out[f"{dst}attn.{name}.{p}"] = chunk
            move(f"{src}img_mlp.0.{p}", f"{dst}ff.net.0.proj.{p}")
            move(f"{src}img_mlp.2.{p}", f"{dst}ff.net.2.{p}")
            move(f"{src}txt_mlp.0.{p}", f"{dst}ff_context.net.0.proj.{p}")
            move(f"{src}txt_mlp.2.{p}", f"{dst}ff_context.net.2.{p}")
            move(f"{src}img_attn.proj.{p}", f"{dst}attn.to_out.0.{p}")
            move(f"{src}txt_attn.proj.{p}", f"{dst}attn.to_add_out.{p}")
        move(f"{src}img_attn.norm.query_norm.scale", f"{dst}attn.norm_q.weight")
        move(f"{src}img_attn.norm.key_norm.scale", f"{dst}attn.norm_k.weight")
        move(f"{src}txt_attn.norm.query_norm.scale", f"{dst}attn.norm_added_q.weight")
        move(f"{src}txt_attn.norm.key_norm.scale", f"{dst}attn.norm_added_k.weight")

    for i in range(_block_count(list(sd), "single_blocks.")):
        src, dst = f"single_blocks.{i}.", f"single_transformer_blocks.{i}."
        inner = sd[f"{src}linear2.weight"].shape[0]
        mlp = sd[f"{src}linear1.weight"].shape[0] - 3 * inner
        for p in ("weight", "bias"):
            move(f"{src}modulation.lin.{p}", f"{dst}norm.linear.{p}")
            parts = torch.split(sd.pop(f"{src}linear1.{p}"), (inner, inner, inner, mlp), dim=0)
            for name, part in zip(("attn.to_q", "attn.to_k", "attn.to_v", "proj_mlp"), parts, strict=True):
                out[f"{dst}{name}.{p}"] = part
            move(f"{src}linear2.{p}", f"{dst}proj_out.{p}")
        move(f"{src}norm.query_norm.scale", f"{dst}attn.norm_q.weight")
        move(f"{src}norm.key_norm.scale", f"{dst}attn.norm_k.weight")

    for p in ("weight", "bias"):
        move(f"final_layer.linear.{p}", f"proj_out.{p}")
        out[f"norm_out.linear.{p}"] = _swap_scale_shift(sd.pop(f"final_layer.adaLN_modulation.1.{p}"))
    return out


def transformer_config_from_bfl(checkpoint: dict[str, Any], base: dict[str, Any]) -> dict[str, Any]:
    """``FluxTransformer2DModel`` config for a BFL checkpoint: ``base`` (a packaged or given config) with the
    block counts and guidance embedder the tensors show. Raises ``ValueError`` when the checkpoint's widths differ
    from ``base`` (the rotary axes cannot be read from weights, so another width needs its own config)."""
    sd = strip_bfl_prefix(checkpoint)
    keys = list(sd)
    cfg = dict(base)
    cfg["num_layers"] = _block_count(keys, "double_blocks.")
    cfg["num_single_layers"] = _block_count(keys, "single_blocks.")
    cfg["guidance_embeds"] = has_guidance_embedder(keys)
    inner, in_channels = (int(n) for n in sd["img_in.weight"].shape)
    found = {"in_channels": in_channels, "inner_dim": inner,
             "joint_attention_dim": int(sd["txt_in.weight"].shape[1]),
             "pooled_projection_dim": int(sd["vector_in.in_layer.weight"].shape[1])}
    expected = {"in_channels": cfg.get("in_channels", 64),
                "inner_dim": cfg.get("num_attention_heads", 24) * cfg.get("attention_head_dim", 128),
                "joint_attention_dim": cfg.get("joint_attention_dim", 4096),
                "pooled_projection_dim": cfg.get("pooled_projection_dim", 768)}
    bad = [f"{k} {found[k]} (config {expected[k]})" for k in found if found[k] != expected[k]]
    if bad:
        raise ValueError("the checkpoint's widths differ from the FLUX.1 config: " + ", ".join(bad))
    return cfg
