"""sd-scripts' FLUX.1 LoRA module set (``networks/lora_flux.py``) mapped onto diffusers' module paths.

Plain Python (no torch): the table every other piece reads. Until the FLUX tables of :mod:`lora_compat.arch`
land, this is the local copy; names and order come from sd-scripts at 48d368f (golden ``flux_lora_keys.json``).

A kohya module may cover several diffusers modules: the fused BFL projections ``img_attn.qkv`` / ``txt_attn.qkv``
(q, k, v) and ``single_blocks.N.linear1`` (q, k, v, mlp) are one ``nn.Linear`` in BFL but three or four in
diffusers; their outputs are concatenated in the listed order (sd-scripts' ``convert_flux_lora.py`` and diffusers'
single-file converter use the same row order).
"""

from __future__ import annotations

from dataclasses import dataclass

PREFIX_UNET = "lora_unet"
PREFIX_CLIP_L = "lora_te1"
PREFIX_T5XXL = "lora_te3"   # sd-scripts: "make ComfyUI compatible" (no te2)

PARTS = ("transformer", "clip_l", "t5xxl")


@dataclass(frozen=True)
class FluxModule:
    """One sd-scripts LoRA module: its kohya name, model part, diffusers path(s) and kind.

    ``paths`` has one entry, or several for a fused BFL projection (outputs concatenated in this order).
    ``kind``: ``img_attn``/``txt_attn``/``img_mlp``/``txt_mlp``/``img_mod``/``txt_mod`` (double blocks),
    ``single`` (linear1 / linear2), ``single_mod``, ``embedder`` (``in_dims``), ``clip_l``, ``t5xxl``.
    ``block`` is the block index (double or single) or None.
    """

    kohya_name: str
    part: str
    paths: tuple[str, ...]
    kind: str
    block: int | None = None

    @property
    def fused(self) -> bool:
        """True when the kohya module spans several diffusers modules (one shared down)."""
        return len(self.paths) > 1


# (kohya suffix, diffusers suffixes, kind): the order of BFL's DoubleStreamBlock.named_modules().
DOUBLE_BLOCK: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("img_mod_lin", ("norm1.linear",), "img_mod"),
    ("img_attn_qkv", ("attn.to_q", "attn.to_k", "attn.to_v"), "img_attn"),
    ("img_attn_proj", ("attn.to_out.0",), "img_attn"),
    ("img_mlp_0", ("ff.net.0.proj",), "img_mlp"),
    ("img_mlp_2", ("ff.net.2",), "img_mlp"),
    ("txt_mod_lin", ("norm1_context.linear",), "txt_mod"),
    ("txt_attn_qkv", ("attn.add_q_proj", "attn.add_k_proj", "attn.add_v_proj"), "txt_attn"),
    ("txt_attn_proj", ("attn.to_add_out",), "txt_attn"),
    ("txt_mlp_0", ("ff_context.net.0.proj",), "txt_mlp"),
    ("txt_mlp_2", ("ff_context.net.2",), "txt_mlp"),
)
SINGLE_BLOCK: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("linear1", ("attn.to_q", "attn.to_k", "attn.to_v", "proj_mlp"), "single"),
    ("linear2", ("proj_out",), "single"),
    ("modulation_lin", ("norm.linear",), "single_mod"),
)
# in_dims = [img, time, vector, guidance, txt]: (in_dims index, kohya suffix, diffusers path).
EMBEDDERS = (
    (0, "img_in", "x_embedder"),
    (1, "time_in_in_layer", "time_text_embed.timestep_embedder.linear_1"),
    (1, "time_in_out_layer", "time_text_embed.timestep_embedder.linear_2"),
    (2, "vector_in_in_layer", "time_text_embed.text_embedder.linear_1"),
    (2, "vector_in_out_layer", "time_text_embed.text_embedder.linear_2"),
    (3, "guidance_in_in_layer", "time_text_embed.guidance_embedder.linear_1"),
    (3, "guidance_in_out_layer", "time_text_embed.guidance_embedder.linear_2"),
    (4, "txt_in", "context_embedder"),
)
# CLIP-L: per layer, the order of transformers' CLIPEncoderLayer (k, v, q, out, fc1, fc2). The kohya name keeps
# "text_model." (transformers 4 paths); transformers 5 dropped it from CLIPTextModel's module paths.
CLIP_LAYER = (("self_attn_k_proj", "self_attn.k_proj"), ("self_attn_v_proj", "self_attn.v_proj"),
              ("self_attn_q_proj", "self_attn.q_proj"), ("self_attn_out_proj", "self_attn.out_proj"),
              ("mlp_fc1", "mlp.fc1"), ("mlp_fc2", "mlp.fc2"))
T5_BLOCK = (("layer_0_SelfAttention_q", "layer.0.SelfAttention.q"),
            ("layer_0_SelfAttention_k", "layer.0.SelfAttention.k"),
            ("layer_0_SelfAttention_v", "layer.0.SelfAttention.v"),
            ("layer_0_SelfAttention_o", "layer.0.SelfAttention.o"),
            ("layer_1_DenseReluDense_wi_0", "layer.1.DenseReluDense.wi_0"),
            ("layer_1_DenseReluDense_wi_1", "layer.1.DenseReluDense.wi_1"),
            ("layer_1_DenseReluDense_wo", "layer.1.DenseReluDense.wo"))


def transformer_modules(num_double: int, num_single: int, *, guidance: bool = True, chroma: bool = False,
                        embedders: bool = False) -> list[FluxModule]:
    """The DiT's LoRA modules in sd-scripts' order: double blocks, single blocks, then (``embedders``) the five
    ``in_dims`` embedders. ``guidance=False`` (schnell) has no guidance embedder; Chroma's blocks have no
    modulation Linears and it has only ``img_in``/``txt_in`` embedders."""
    out = []
    for i in range(num_double):
        for suffix, paths, kind in DOUBLE_BLOCK:
            if chroma and kind.endswith("_mod"):
                continue
            out.append(FluxModule(f"{PREFIX_UNET}_double_blocks_{i}_{suffix}", "transformer",
                                  tuple(f"transformer_blocks.{i}.{p}" for p in paths), kind, i))
    for i in range(num_single):
        for suffix, paths, kind in SINGLE_BLOCK:
            if chroma and kind == "single_mod":
                continue
            out.append(FluxModule(f"{PREFIX_UNET}_single_blocks_{i}_{suffix}", "transformer",
                                  tuple(f"single_transformer_blocks.{i}.{p}" for p in paths), kind, i))
    if embedders:
        out += embedder_modules(guidance=guidance, chroma=chroma)
    return out


def embedder_modules(*, guidance: bool = True, chroma: bool = False) -> list[FluxModule]:
    """The ``in_dims`` embedder modules present in the model (kind ``embedder``, ``block`` = in_dims index)."""
    out = []
    for index, suffix, path in EMBEDDERS:
        if index == 3 and not guidance:
            continue
        if chroma and index in (1, 2, 3):
            continue
        out.append(FluxModule(f"{PREFIX_UNET}_{suffix}", "transformer", (path,), "embedder", index))
    return out


def clip_l_modules(num_layers: int = 12) -> list[FluxModule]:
    """CLIP-L's LoRA modules (``lora_te1_``): q/k/v/out projections and both MLP layers of every layer."""
    return [FluxModule(f"{PREFIX_CLIP_L}_text_model_encoder_layers_{i}_{suffix}", "clip_l",
                       (f"text_model.encoder.layers.{i}.{path}",), "clip_l", i)
            for i in range(num_layers) for suffix, path in CLIP_LAYER]


def t5xxl_modules(num_layers: int = 24) -> list[FluxModule]:
    """T5-XXL's LoRA modules (``lora_te3_``, mixed case): q/k/v/o and the gated MLP of every block."""
    return [FluxModule(f"{PREFIX_T5XXL}_encoder_block_{i}_{suffix}", "t5xxl", (f"encoder.block.{i}.{path}",),
                       "t5xxl", i)
            for i in range(num_layers) for suffix, path in T5_BLOCK]


def resolve_path(path: str, available: set[str]) -> str | None:
    """``path`` as spelled in a loaded model: transformers 5 drops ``text_model.`` from CLIPTextModel paths."""
    for cand in (path, path.removeprefix("text_model.")):
        if cand in available:
            return cand
    return None
