"""Pinned module tables of SD3 medium, SD3.5 large and SD3.5 medium: sd-scripts' (SAI MMDiT) names, diffusers'
``SD3Transformer2DModel`` names, the fused q/k/v rows and the swapped modulation halves. Data only: SD3 LoRAs are
detected and named by the weights wing but not converted yet (nobody ships kohya <-> diffusers for SD3; the
tables are where that conversion starts).

sd-scripts' ``networks.lora_sd3`` targets ``SingleDiTBlock`` (``joint_blocks.N.context_block`` and ``.x_block``):
kohya names ``lora_unet_joint_blocks_N_x_block_attn_qkv`` ...; with ``emb_dims`` also the embedders and the final
layer (``x_embedder.proj`` is a 2x2 Conv2d). Text encoders: ``lora_te1_`` CLIP-L, ``lora_te2_`` CLIP-G, ``lora_te3_``
T5-XXL (``train_t5xxl``). Map (modern-archs.md §3; ComfyUI ``MMDIT_MAP_BLOCK``): ``x_block.attn.qkv`` = ``attn.to_q/
to_k/to_v``, ``context_block.attn.qkv`` = ``attn.add_q/k/v_proj``, ``attn.proj`` = ``to_out.0`` / ``to_add_out``,
``mlp.fc1/fc2`` = ``ff(_context).net.0.proj`` / ``net.2``, ``adaLN_modulation.1`` = ``norm1(_context).linear``,
``attn2`` (SD3.5 medium's first 13 x blocks) = ``attn2.*``. The last block's context half is pre-only (qkv and a 2h
modulation, halves swapped against diffusers), like ``final_layer.adaLN_modulation.1`` = ``norm_out.linear``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import NamedTuple

from lora_compat.arch.flux import CLIP_L, T5_XXL, ClipWidths, FluxModule, clip_l_modules, t5_modules

SD3_VARIANTS: tuple[str, ...] = ("sd3-medium", "sd3.5-large", "sd3.5-medium")


class Sd3Widths(NamedTuple):
    """Widths of an MMDiT: hidden = 64 * depth in SAI's configs."""

    depth: int = 24
    hidden: int = 1536
    context: int = 4096        # context_embedder input (T5-XXL d_model)
    adm: int = 2048            # y_embedder input (CLIP-L + CLIP-G pooled)
    in_channels: int = 16
    patch: int = 2
    attn2_blocks: int = 0      # x blocks with a second self-attention (SD3.5 medium: 13)


WIDTHS: dict[str, Sd3Widths] = {
    "sd3-medium": Sd3Widths(24, 1536),
    "sd3.5-large": Sd3Widths(38, 2432),
    "sd3.5-medium": Sd3Widths(24, 1536, attn2_blocks=13),
}
CLIP_G = ClipWidths(hidden=1280, mlp=5120, layers=32)


class Sd3Part(NamedTuple):
    diffusers_path: str
    offset: int
    rows: int
    swap: bool = False       # the SAI module holds this part's row halves swapped (scale/shift)


class Sd3Module(NamedTuple):
    """One Linear (or the patch-embedding Conv2d) of the SAI MMDiT a LoRA can adapt."""

    kohya_name: str
    part: str                # transformer | te1 | te2 | te3
    sai_path: str            # joint_blocks.0.x_block.attn.qkv (TE: the HF path)
    in_features: int
    out_features: int
    kernel: int              # 1, or 2 for x_embedder.proj
    group: str               # joint | embedder | final | text
    block: int | None
    parts: tuple[Sd3Part, ...]
    emb_dims_index: int | None = None  # sd-scripts' emb_dims position (context, t, x, y, final_mod, final_linear)

    @property
    def kind(self) -> str:
        return "conv" if self.kernel > 1 else "linear"


def _mod(path: str, fin: int, fout: int, group: str, block: int | None, parts: list[tuple[str, int, bool]],
         kernel: int = 1, emb: int | None = None) -> Sd3Module:
    out, off = [], 0
    for dpath, rows, swap in parts:
        out.append(Sd3Part(dpath, off, rows, swap))
        off += rows
    if off != fout:  # pragma: no cover - table bug
        raise AssertionError(f"{path}: parts cover {off} of {fout} rows")
    return Sd3Module("lora_unet_" + path.replace(".", "_"), "transformer", path, fin, fout, kernel, group, block,
                     tuple(out), emb)


def transformer_modules(variant: str = "sd3-medium", widths: Sd3Widths | None = None) -> list[Sd3Module]:
    """Every adaptable module of the MMDiT in sd-scripts' order: joint blocks (context, then x), then the
    ``emb_dims`` embedders and the final layer."""
    if variant not in SD3_VARIANTS:
        raise ValueError(f"unknown SD3 variant {variant!r}; expected one of {', '.join(SD3_VARIANTS)}")
    w = widths or WIDTHS[variant]
    h = w.hidden
    rows: list[Sd3Module] = []
    for i in range(w.depth):
        base, d = f"joint_blocks.{i}", f"transformer_blocks.{i}"
        last = i == w.depth - 1
        ctx = [(f"{base}.context_block.attn.qkv", h, 3 * h,
                [(f"{d}.attn.add_q_proj", h, False), (f"{d}.attn.add_k_proj", h, False),
                 (f"{d}.attn.add_v_proj", h, False)])]
        if not last:
            ctx += [(f"{base}.context_block.attn.proj", h, h, [(f"{d}.attn.to_add_out", h, False)]),
                    (f"{base}.context_block.mlp.fc1", h, 4 * h, [(f"{d}.ff_context.net.0.proj", 4 * h, False)]),
                    (f"{base}.context_block.mlp.fc2", 4 * h, h, [(f"{d}.ff_context.net.2", h, False)]),
                    (f"{base}.context_block.adaLN_modulation.1", h, 6 * h,
                     [(f"{d}.norm1_context.linear", 6 * h, False)])]
        else:  # pre-only: shift/scale only, in the opposite order from diffusers' AdaLayerNormContinuous
            ctx.append((f"{base}.context_block.adaLN_modulation.1", h, 2 * h,
                        [(f"{d}.norm1_context.linear", 2 * h, True)]))
        attn2 = i < w.attn2_blocks
        x = [(f"{base}.x_block.attn.qkv", h, 3 * h,
              [(f"{d}.attn.to_q", h, False), (f"{d}.attn.to_k", h, False), (f"{d}.attn.to_v", h, False)]),
             (f"{base}.x_block.attn.proj", h, h, [(f"{d}.attn.to_out.0", h, False)])]
        if attn2:
            x += [(f"{base}.x_block.attn2.qkv", h, 3 * h,
                   [(f"{d}.attn2.to_q", h, False), (f"{d}.attn2.to_k", h, False), (f"{d}.attn2.to_v", h, False)]),
                  (f"{base}.x_block.attn2.proj", h, h, [(f"{d}.attn2.to_out.0", h, False)])]
        n_mod = 9 if attn2 else 6
        x += [(f"{base}.x_block.mlp.fc1", h, 4 * h, [(f"{d}.ff.net.0.proj", 4 * h, False)]),
              (f"{base}.x_block.mlp.fc2", 4 * h, h, [(f"{d}.ff.net.2", h, False)]),
              (f"{base}.x_block.adaLN_modulation.1", h, n_mod * h, [(f"{d}.norm1.linear", n_mod * h, False)])]
        rows += [_mod(p, fin, fout, "joint", i, parts) for p, fin, fout, parts in ctx + x]
    out_ch = w.patch * w.patch * w.in_channels
    rows += [
        _mod("context_embedder", w.context, h, "embedder", None, [("context_embedder", h, False)], emb=0),
        _mod("t_embedder.mlp.0", 256, h, "embedder", None, [("time_text_embed.timestep_embedder.linear_1", h, False)],
             emb=1),
        _mod("t_embedder.mlp.2", h, h, "embedder", None, [("time_text_embed.timestep_embedder.linear_2", h, False)],
             emb=1),
        _mod("x_embedder.proj", w.in_channels, h, "embedder", None, [("pos_embed.proj", h, False)], kernel=w.patch,
             emb=2),
        _mod("y_embedder.mlp.0", w.adm, h, "embedder", None, [("time_text_embed.text_embedder.linear_1", h, False)],
             emb=3),
        _mod("y_embedder.mlp.2", h, h, "embedder", None, [("time_text_embed.text_embedder.linear_2", h, False)],
             emb=3),
        _mod("final_layer.adaLN_modulation.1", h, 2 * h, "final", None, [("norm_out.linear", 2 * h, True)], emb=4),
        _mod("final_layer.linear", h, out_ch, "final", None, [("proj_out", out_ch, False)], emb=5),
    ]
    return rows


@dataclass(frozen=True)
class Sd3Table:
    variant: str
    modules: tuple[FluxModule | Sd3Module, ...]
    by_kohya: dict[str, FluxModule | Sd3Module]


@lru_cache(maxsize=8)
def sd3_table(variant: str = "sd3-medium") -> Sd3Table:
    """The module table of ``variant``: CLIP-L (``lora_te1_``), CLIP-G (``lora_te2_``), T5 (``lora_te3_``), MMDiT."""
    mods: tuple[FluxModule | Sd3Module, ...] = (
        *clip_l_modules(CLIP_L), *clip_l_modules(CLIP_G, part="te2"), *t5_modules(T5_XXL),
        *transformer_modules(variant))
    return Sd3Table(variant, mods, {m.kohya_name: m for m in mods})
