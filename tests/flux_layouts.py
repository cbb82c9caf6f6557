"""Test-only inverses of the FLUX.1 checkpoint conversions (written from the facts of diffusers'
``convert_flux_transformer_checkpoint_to_diffusers`` and BFL's ``flux/model.py``): they turn the tiny diffusers
models into the files users have (``flux1-dev.safetensors`` in BFL layout), so loaders can be tested offline."""

from __future__ import annotations

from typing import Any

import torch

_DOUBLE = {"norm1.linear": "img_mod.lin", "norm1_context.linear": "txt_mod.lin", "ff.net.0.proj": "img_mlp.0",
           "ff.net.2": "img_mlp.2", "ff_context.net.0.proj": "txt_mlp.0", "ff_context.net.2": "txt_mlp.2",
           "attn.to_out.0": "img_attn.proj", "attn.to_add_out": "txt_attn.proj",
           "attn.norm_q": "img_attn.norm.query_norm", "attn.norm_k": "img_attn.norm.key_norm",
           "attn.norm_added_q": "txt_attn.norm.query_norm", "attn.norm_added_k": "txt_attn.norm.key_norm"}
_SINGLE = {"norm.linear": "modulation.lin", "proj_out": "linear2", "attn.norm_q": "norm.query_norm",
           "attn.norm_k": "norm.key_norm"}
_TOP = {"time_text_embed.timestep_embedder.linear_1": "time_in.in_layer",
        "time_text_embed.timestep_embedder.linear_2": "time_in.out_layer",
        "time_text_embed.text_embedder.linear_1": "vector_in.in_layer",
        "time_text_embed.text_embedder.linear_2": "vector_in.out_layer",
        "time_text_embed.guidance_embedder.linear_1": "guidance_in.in_layer",
        "time_text_embed.guidance_embedder.linear_2": "guidance_in.out_layer",
        "context_embedder": "txt_in", "x_embedder": "img_in", "proj_out": "final_layer.linear"}


def _param(module: str, param: str, norm: bool) -> str:
    # RMSNorm weights are "scale" in BFL
    return f"{module}.{'scale' if norm else param}"


def diffusers_to_bfl_transformer(sd: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``FluxTransformer2DModel`` state dict -> BFL ``flux1-*.safetensors`` keys (fused qkv / linear1)."""
    sd = dict(sd)
    out: dict[str, Any] = {}
    doubles = sorted({int(k.split(".")[1]) for k in sd if k.startswith("transformer_blocks.")})
    singles = sorted({int(k.split(".")[1]) for k in sd if k.startswith("single_transformer_blocks.")})
    for i in doubles:
        src, dst = f"transformer_blocks.{i}.", f"double_blocks.{i}."
        for p in ("weight", "bias"):
            out[f"{dst}img_attn.qkv.{p}"] = torch.cat([sd.pop(f"{src}attn.{n}.{p}") for n in ("to_q", "to_k", "to_v")])
            out[f"{dst}txt_attn.qkv.{p}"] = torch.cat(
                [sd.pop(f"{src}attn.{n}.{p}") for n in ("add_q_proj", "add_k_proj", "add_v_proj")])
        for key in [k for k in sd if k.startswith(src)]:
            module, _, param = key[len(src):].rpartition(".")
            out[dst + _param(_DOUBLE[module], param, module.startswith("attn.norm"))] = sd.pop(key)
    for i in singles:
        src, dst = f"single_transformer_blocks.{i}.", f"single_blocks.{i}."
        for p in ("weight", "bias"):
            out[f"{dst}linear1.{p}"] = torch.cat(
                [sd.pop(f"{src}{n}.{p}") for n in ("attn.to_q", "attn.to_k", "attn.to_v", "proj_mlp")])
        for key in [k for k in sd if k.startswith(src)]:
            module, _, param = key[len(src):].rpartition(".")
            out[dst + _param(_SINGLE[module], param, module.startswith("attn.norm"))] = sd.pop(key)
    for key in list(sd):
        module, _, param = key.rpartition(".")
        if module == "norm_out.linear":
            scale, shift = sd.pop(key).chunk(2, dim=0)
            out[f"final_layer.adaLN_modulation.1.{param}"] = torch.cat([shift, scale])
        else:
            out[f"{_TOP[module]}.{param}"] = sd.pop(key)
    return {prefix + k: v for k, v in out.items()}


def bfl_lora_target(kohya_name: str) -> str:
    """The BFL weight a kohya ``lora_unet_*`` module adds to (``double_blocks.0.img_attn.qkv.weight``)."""
    name = kohya_name.removeprefix("lora_unet_")
    for block in ("double_blocks_", "single_blocks_"):
        if name.startswith(block):
            index, _, rest = name[len(block):].partition("_")
            rest = {"img_attn_qkv": "img_attn.qkv", "img_attn_proj": "img_attn.proj", "img_mlp_0": "img_mlp.0",
                    "img_mlp_2": "img_mlp.2", "img_mod_lin": "img_mod.lin", "txt_attn_qkv": "txt_attn.qkv",
                    "txt_attn_proj": "txt_attn.proj", "txt_mlp_0": "txt_mlp.0", "txt_mlp_2": "txt_mlp.2",
                    "txt_mod_lin": "txt_mod.lin", "linear1": "linear1", "linear2": "linear2",
                    "modulation_lin": "modulation.lin"}[rest]
            return f"{block[:-1]}.{index}.{rest}.weight"
    return {"img_in": "img_in", "txt_in": "txt_in", "time_in_in_layer": "time_in.in_layer",
            "time_in_out_layer": "time_in.out_layer", "vector_in_in_layer": "vector_in.in_layer",
            "vector_in_out_layer": "vector_in.out_layer", "guidance_in_in_layer": "guidance_in.in_layer",
            "guidance_in_out_layer": "guidance_in.out_layer"}[name] + ".weight"
