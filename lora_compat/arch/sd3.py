"""Pinned module tables of SD3 medium, SD3.5 large and SD3.5 medium: sd-scripts' (SAI MMDiT) names, diffusers'
``SD3Transformer2DModel`` names, the fused q/k/v rows and the swapped modulation halves, as
:class:`lora_compat.arch.flux.FluxModule` / :class:`~lora_compat.arch.flux.FluxPart` rows, so that the weights wing
reads and converts SD3 LoRAs with the same fused <-> split machinery as FLUX.1 (``bfl_path`` holds the SAI path).

sd-scripts' ``networks.lora_sd3`` (48d368f) wraps every ``Linear`` inside a ``SingleDiTBlock`` (``joint_blocks.N.
context_block`` and ``.x_block``), in ``named_modules()`` order (context block first; inside a block ``attn.qkv``,
``attn.proj``, ``attn2.qkv``, ``attn2.proj``, ``mlp.fc1``, ``mlp.fc2``, ``adaLN_modulation.1``): kohya names
``lora_unet_joint_blocks_N_x_block_attn_qkv``. ``emb_dims=[context, t, x, y, final_mod, final_linear]`` adds the
embedders and the final layer (``x_embedder.proj`` is a 2x2 Conv2d: down ``[r, 16, 2, 2]``, up ``[h, r, 1, 1]``).
Text encoders: ``lora_te1_`` CLIP-L, ``lora_te2_`` CLIP-G, ``lora_te3_`` T5-XXL (``train_t5xxl``).

Map (modern-archs.md §3; ComfyUI ``MMDIT_MAP_BLOCK``; checked against a tiny ``SD3Transformer2DModel`` in the tests):
``x_block.attn.qkv`` = ``attn.to_q/to_k/to_v`` (rows 0 / h / 2h: SAI's ``split_qkv`` reshapes to (3, heads, dim)),
``context_block.attn.qkv`` = ``attn.add_q/k/v_proj``, ``attn.proj`` = ``to_out.0`` / ``to_add_out``, ``mlp.fc1/fc2``
= ``ff(_context).net.0.proj`` / ``net.2``, ``adaLN_modulation.1`` = ``norm1(_context).linear`` (same chunk order:
shift, scale, gate ..., also for SD3.5 medium's 9-chunk ``SD35AdaLayerNormZeroX``), ``attn2`` (SD3.5 medium's first
13 x blocks) = ``attn2.*``. The last block's context half is pre-only (qkv and a 2h modulation whose halves are
``(shift, scale)`` in SAI and ``(scale, shift)`` in diffusers' ``AdaLayerNormContinuous``), like
``final_layer.adaLN_modulation.1`` = ``norm_out.linear``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import NamedTuple

from lora_compat.arch.flux import (
    CLIP_L,
    T5_XXL,
    ClipWidths,
    FluxModule,
    FluxPart,
    T5Widths,
    clip_l_modules,
    t5_modules,
)

SD3_VARIANTS: tuple[str, ...] = ("sd3-medium", "sd3.5-large", "sd3.5-medium")
#: Parts (kohya prefix / diffusers pipeline component / PEFT sub-folder) of an SD3 LoRA.
PARTS: tuple[str, ...] = ("transformer", "te1", "te2", "te3")
KOHYA_PREFIX = {"transformer": "lora_unet", "te1": "lora_te1", "te2": "lora_te2", "te3": "lora_te3"}
#: ``StableDiffusion3Pipeline`` components: CLIP-L, CLIP-G (``CLIPTextModelWithProjection``), T5-XXL.
DIFFUSERS_COMPONENT = {"transformer": "transformer", "te1": "text_encoder", "te2": "text_encoder_2",
                       "te3": "text_encoder_3"}
#: sd-scripts' ``ss_base_model_version`` (the bare ``mmdit.model_type``) and ``modelspec.architecture`` per variant.
BASE_MODEL_VERSION = {"sd3-medium": "medium", "sd3.5-large": "5-large", "sd3.5-medium": "5-medium"}
MODELSPEC_ARCH = {"sd3-medium": "stable-diffusion-3-medium/lora", "sd3.5-large": "stable-diffusion-3-5-large/lora",
                  "sd3.5-medium": "stable-diffusion-3-5-medium/lora"}
#: sd-scripts' ``emb_dims`` order: the kohya-name filter of each entry (``_t_embedder``: not ``context_embedder``).
EMB_DIMS_FILTERS = ("context_embedder", "_t_embedder", "x_embedder", "y_embedder", "final_layer_adaLN_modulation",
                    "final_layer_linear")


class Sd3Widths(NamedTuple):
    """Widths of an MMDiT: hidden = 64 * depth in SAI's configs (a tiny test model may differ)."""

    depth: int = 24
    hidden: int = 1536
    context: int = 4096        # context_embedder input (T5-XXL d_model)
    adm: int = 2048            # y_embedder input (CLIP-L + CLIP-G pooled)
    in_channels: int = 16
    patch: int = 2
    attn2_blocks: int = 0      # x blocks with a second self-attention (SD3.5 medium: 13)
    out_channels: int = 16
    time: int = 256            # t_embedder input (sinusoidal embedding)


WIDTHS: dict[str, Sd3Widths] = {
    "sd3-medium": Sd3Widths(24, 1536),
    "sd3.5-large": Sd3Widths(38, 2432),
    "sd3.5-medium": Sd3Widths(24, 1536, attn2_blocks=13),
}
CLIP_G = ClipWidths(hidden=1280, mlp=5120, layers=32)


def _mod(path: str, fin: int, fout: int, group: str, block: int | None, parts: list[tuple[str, int, bool]],
         kernel: int = 1, emb: int | None = None) -> FluxModule:
    name = "lora_unet_" + path.replace(".", "_")
    out, off = [], 0
    for i, (dpath, rows, swap) in enumerate(parts):
        out.append(FluxPart(dpath, "transformer", fin, rows, off, i, name, swap))
        off += rows
    if off != fout:  # pragma: no cover - table bug
        raise AssertionError(f"{path}: parts cover {off} of {fout} rows")
    return FluxModule(name, "transformer", path, fin, fout, group, block, tuple(out), in_dims_index=emb,
                      kernel_size=kernel)


def transformer_modules(variant: str = "sd3-medium", widths: Sd3Widths | None = None) -> list[FluxModule]:
    """Every adaptable module of the MMDiT in sd-scripts' order: joint blocks (context, then x), then the
    ``emb_dims`` embedders and the final layer (``in_dims_index`` = the ``emb_dims`` position)."""
    if variant not in SD3_VARIANTS:
        raise ValueError(f"unknown SD3 variant {variant!r}; expected one of {', '.join(SD3_VARIANTS)}")
    w = widths or WIDTHS[variant]
    h = w.hidden
    rows: list[FluxModule] = []
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
    out_ch = w.patch * w.patch * w.out_channels
    rows += [
        _mod("context_embedder", w.context, h, "embedder", None, [("context_embedder", h, False)], emb=0),
        _mod("t_embedder.mlp.0", w.time, h, "embedder", None,
             [("time_text_embed.timestep_embedder.linear_1", h, False)], emb=1),
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
    """Every module of one SD3 variant (at given widths) and the indexes the weights wing resolves names with
    (the same attributes as :class:`lora_compat.arch.flux.FluxTable`; ``by_bfl`` is keyed by the SAI path)."""

    variant: str
    widths: Sd3Widths
    clip_l: ClipWidths
    clip_g: ClipWidths
    t5: T5Widths
    modules: tuple[FluxModule, ...]
    by_kohya: dict[str, FluxModule] = field(repr=False)
    by_bfl: dict[tuple[str, str], FluxModule] = field(repr=False)        # (part, SAI/HF path)
    by_diffusers: dict[tuple[str, str], FluxPart] = field(repr=False)    # (part, diffusers/HF path)
    order: dict[str, int] = field(repr=False)                            # kohya name -> position

    def module_of(self, part: FluxPart) -> FluxModule:
        """The SAI module a diffusers part belongs to."""
        return self.by_kohya[part.module]


@lru_cache(maxsize=32)
def sd3_table(variant: str = "sd3-medium", widths: Sd3Widths | None = None, clip_l: ClipWidths = CLIP_L,
              clip_g: ClipWidths = CLIP_G, t5: T5Widths = T5_XXL) -> Sd3Table:
    """The module table of ``variant``: CLIP-L (``lora_te1_``), CLIP-G (``lora_te2_``), T5 (``lora_te3_``), MMDiT."""
    w = widths or WIDTHS[variant]
    mods = (*clip_l_modules(clip_l), *clip_l_modules(clip_g, part="te2"), *t5_modules(t5),
            *transformer_modules(variant, w))
    by_kohya: dict[str, FluxModule] = {}
    by_bfl: dict[tuple[str, str], FluxModule] = {}
    by_diff: dict[tuple[str, str], FluxPart] = {}
    for m in mods:
        by_kohya[m.kohya_name] = by_bfl[(m.part, m.bfl_path)] = m
        for p in m.parts:
            by_diff[(p.part, p.diffusers_path)] = p
            if p.part in ("te1", "te2"):
                by_diff.setdefault((p.part, p.te_path(5)), p)
    order = {m.kohya_name: i for i, m in enumerate(mods)}
    return Sd3Table(variant, w, clip_l, clip_g, t5, tuple(mods), by_kohya, by_bfl, by_diff, order)


def sd_scripts_sd3_modules(table: Sd3Table, *, text_encoders: bool = True, train_t5xxl: bool = False,
                           emb_dims: tuple[int, ...] | None = None) -> list[FluxModule]:
    """The modules a fresh ``networks.lora_sd3`` network saves, in its order: CLIP-L and CLIP-G (unless
    ``network_train_unet_only``; T5 too with ``train_t5xxl=True``), every Linear of every ``SingleDiTBlock``, then
    the ``emb_dims`` entries with a rank (``0`` skips; ``x_embedder`` is its Conv2d). Derived from sd-scripts'
    ``networks/lora_sd3.py`` (48d368f ``LoRANetwork.__init__``); per-type dims and ``train_block_indices`` only
    remove modules and are not modelled here."""
    parts = ("te1", "te2", "te3") if train_t5xxl else ("te1", "te2")
    out = [m for m in table.modules if text_encoders and m.part in parts]
    out += [m for m in table.modules if m.group == "joint"]
    if emb_dims is not None:
        if len(emb_dims) != 6:
            raise ValueError(f"invalid emb_dims: {list(emb_dims)}, must be 6 dimensions (context, t, x, y, "
                             "final_mod, final_linear)")
        for flt, dim in zip(EMB_DIMS_FILTERS, emb_dims, strict=True):
            if dim:
                out += [m for m in table.modules if m.group in ("embedder", "final") and flt in m.kohya_name]
    return out
