"""Which LoRA modules sd-scripts' ``networks.lora_flux`` creates, with which rank and alpha (plain Python).

:func:`parse_network_args` reads ``network_args`` (all strings, as sd-scripts receives them) the way
``lora_flux.create_network`` does; :func:`select_modules` applies ``LoRANetwork``'s per-module rules to the
module table of :mod:`.modules`:

1. a module whose kohya name matches a ``network_reg_dims`` regex (``re.search``, **first match wins**) gets that
   rank and skips rules 2-3;
2. otherwise the default rank (``network_dim``; for an embedder its ``in_dims`` entry), replaced by the first
   matching per-type rank (``img_attn_dim`` … ``single_mod_dim``, 0 = skip);
3. a block outside ``train_double_block_indices`` / ``train_single_block_indices`` gets rank 0;
4. rank 0 skips the module. alpha = ``network_alpha`` (kept as int or float, like sd-scripts' buffers), or the
   module's rank when ``network_alpha`` is 0 or None.

Text encoders: CLIP-L modules unless ``network_train_unet_only`` (Chroma has no CLIP-L); T5-XXL modules only with
``train_t5xxl=True`` and not ``network_train_unet_only``; ``train_t5xxl`` with cached text-encoder outputs is an
error, as in sd-scripts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from lora_compat.train.flux.modules import FluxModule, clip_l_modules, t5xxl_modules, transformer_modules

NUM_DOUBLE_BLOCKS = 19   # sd-scripts validates block indices against the real model's counts
NUM_SINGLE_BLOCKS = 38
TRAIN_BLOCKS = ("all", "single", "double")
TYPE_DIM_ARGS = ("img_attn_dim", "txt_attn_dim", "img_mlp_dim", "txt_mlp_dim", "img_mod_dim", "txt_mod_dim",
                 "single_dim", "single_mod_dim")
# lora_flux's identifiers: every substring must occur in the kohya name (order = priority).
TYPE_DIM_IDENTIFIERS = (("img_attn",), ("txt_attn",), ("img_mlp",), ("txt_mlp",), ("img_mod",), ("txt_mod",),
                        ("single_blocks", "linear"), ("modulation",))


def _flag(value: str | None) -> bool:
    # sd-scripts compares with the exact string "True": "true" is False
    return value == "True"


def parse_block_selection(selection: str, total_blocks: int) -> list[bool]:
    """``all``, ``none``/empty, or ``"0,2-3"`` -> one flag per block (sd-scripts' ``parse_block_selection``)."""
    if selection == "all":
        return [True] * total_blocks
    if selection in ("none", ""):
        return [False] * total_blocks
    selected = [False] * total_blocks
    for part in selection.split(","):
        if "-" in part:
            start_s, end_s = (s.strip() for s in part.split("-"))
            start, end = int(start_s), int(end_s)
            if not 0 <= start < total_blocks:
                raise ValueError(f"invalid start index: {start}")
            if not 0 <= end < total_blocks:
                raise ValueError(f"invalid end index: {end}")
            if start > end:
                raise ValueError(f"invalid range: {start}-{end}")
            for i in range(start, end + 1):
                selected[i] = True
        else:
            index = int(part)
            if not 0 <= index < total_blocks:
                raise ValueError(f"invalid index: {index}")
            selected[index] = True
    return selected


def parse_kv_pairs(text: str, *, as_int: bool) -> dict[str, float]:
    """``"regex=value,regex=value"`` (``network_reg_dims`` / ``network_reg_lrs``); malformed pairs are skipped
    as sd-scripts does (it logs a warning)."""
    pairs: dict[str, float] = {}
    for pair in text.split(","):
        pair = pair.strip()
        if not pair or "=" not in pair:
            continue
        key, value = (s.strip() for s in pair.split("=", 1))
        try:
            pairs[key] = int(value) if as_int else float(value)
        except ValueError:
            continue
    return pairs


def parse_in_dims(text: str) -> list[int]:
    """``"[img,time,vector,guidance,txt]"`` -> five ranks."""
    text = text.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    dims = [int(d) for d in text.split(",")]
    if len(dims) != 5:
        raise ValueError(f"invalid in_dims: {dims}, must be 5 dimensions (img, time, vector, guidance, txt)")
    return dims


@dataclass
class FluxNetworkArgs:
    """``lora_flux.create_network``'s arguments after parsing (sd-scripts' defaults)."""

    network_dim: int = 4
    network_alpha: float | int = 1.0
    dropout: float | None = None            # --network_dropout (on the rank activations)
    rank_dropout: float | None = None
    module_dropout: float | None = None
    train_blocks: str = "all"
    split_qkv: bool = False
    train_t5xxl: bool = False
    type_dims: list[int | None] | None = None
    in_dims: list[int] | None = None
    train_double_block_indices: list[bool] | None = None
    train_single_block_indices: list[bool] | None = None
    reg_dims: dict[str, int] | None = None
    reg_lrs: dict[str, float] | None = None
    loraplus_lr_ratio: float | None = None
    loraplus_unet_lr_ratio: float | None = None
    loraplus_text_encoder_lr_ratio: float | None = None
    ggpo_sigma: float | None = None
    ggpo_beta: float | None = None
    verbose: bool = False
    raw: dict[str, str] = field(default_factory=dict)


def parse_network_args(network_dim: int | None, network_alpha: float | int | None,
                       network_args: dict[str, str] | None = None,
                       network_dropout: float | None = None) -> FluxNetworkArgs:
    """Parse like ``lora_flux.create_network``: ``network_dim`` None -> 4, ``network_alpha`` None -> 1.0 (the
    training scripts' parser default is the int 1, kept as int), ``network_args`` values as strings."""
    kw = {k: str(v) for k, v in (network_args or {}).items()}
    out = FluxNetworkArgs(raw=dict(kw), dropout=network_dropout)
    out.network_dim = 4 if network_dim is None else int(network_dim)
    out.network_alpha = 1.0 if network_alpha is None else network_alpha
    type_dims = [int(kw[name]) if name in kw else None for name in TYPE_DIM_ARGS]
    out.type_dims = None if all(d is None for d in type_dims) else type_dims
    if "in_dims" in kw:
        out.in_dims = parse_in_dims(kw["in_dims"])
    if "train_double_block_indices" in kw:
        out.train_double_block_indices = parse_block_selection(kw["train_double_block_indices"], NUM_DOUBLE_BLOCKS)
    if "train_single_block_indices" in kw:
        out.train_single_block_indices = parse_block_selection(kw["train_single_block_indices"], NUM_SINGLE_BLOCKS)
    for name in ("rank_dropout", "module_dropout", "ggpo_sigma", "ggpo_beta", "loraplus_lr_ratio",
                 "loraplus_unet_lr_ratio", "loraplus_text_encoder_lr_ratio"):
        if name in kw:
            setattr(out, name, float(kw[name]))
    if "train_blocks" in kw:
        if kw["train_blocks"] not in TRAIN_BLOCKS:
            raise ValueError(f"invalid train_blocks: {kw['train_blocks']}")
        out.train_blocks = kw["train_blocks"]
    out.split_qkv = _flag(kw.get("split_qkv"))
    out.train_t5xxl = _flag(kw.get("train_t5xxl"))
    out.verbose = _flag(kw.get("verbose"))
    if "network_reg_dims" in kw:
        out.reg_dims = {k: int(v) for k, v in parse_kv_pairs(kw["network_reg_dims"], as_int=True).items()}
    if "network_reg_lrs" in kw:
        out.reg_lrs = parse_kv_pairs(kw["network_reg_lrs"], as_int=False)
    return out


@dataclass(frozen=True)
class PlannedModule:
    """A module the network will wrap: the table entry, its rank and alpha (int or float, as sd-scripts)."""

    module: FluxModule
    rank: int
    alpha: float | int

    @property
    def kohya_name(self) -> str:
        return self.module.kohya_name

    @property
    def scale(self) -> float:
        """``alpha / rank``, the factor on ``up @ down``."""
        return float(self.alpha) / self.rank


def _module_rank(args: FluxNetworkArgs, m: FluxModule) -> tuple[int | None, float | int | None]:
    name = m.kohya_name
    if args.reg_dims is not None:
        for pattern, reg_dim in args.reg_dims.items():
            if re.search(pattern, name):
                return reg_dim, args.network_alpha
    dim: int | None
    if m.kind == "embedder":
        if args.in_dims is None or m.block is None:
            return None, None
        dim = args.in_dims[m.block]
    else:
        dim = args.network_dim
    if m.part == "transformer" and args.type_dims is not None:
        for d, ident in zip(args.type_dims, TYPE_DIM_IDENTIFIERS, strict=True):
            if d is not None and all(s in name for s in ident):
                dim = d
                break
    if (m.part == "transformer" and dim and (args.train_double_block_indices is not None
                                             or args.train_single_block_indices is not None)
            and ("double" in name or "single" in name)):
        index = int(name.split("_")[4])
        double_off = ("double" in name and args.train_double_block_indices is not None
                      and not args.train_double_block_indices[index])
        single_off = ("single" in name and args.train_single_block_indices is not None
                      and not args.train_single_block_indices[index])
        if double_off or single_off:
            dim = 0
    return dim, args.network_alpha


def _planned(m: FluxModule, dim: int, alpha: float | int | None) -> PlannedModule:
    # LoRAModule: alpha 0 / None means alpha = rank (then an int, stored as an int64 buffer)
    return PlannedModule(m, int(dim), dim if alpha is None or alpha == 0 else alpha)


def select_modules(args: FluxNetworkArgs, *, num_double: int, num_single: int, guidance: bool = True,
                   chroma: bool = False, clip_l_layers: int | None = 12, t5_layers: int = 24,
                   network_train_unet_only: bool = False, network_train_text_encoder_only: bool = False,
                   cache_text_encoder_outputs: bool = False) -> list[PlannedModule]:
    """The modules a fresh sd-scripts FLUX network trains, in its state-dict order (CLIP-L, T5-XXL, DiT).

    ``clip_l_layers`` None means the model has no CLIP-L (Chroma). Raises ``ValueError`` where sd-scripts
    raises (``train_t5xxl`` with cached text-encoder outputs).
    """
    if args.train_t5xxl and cache_text_encoder_outputs:
        raise ValueError("train_t5xxl=True cannot be used with cache_text_encoder_outputs: the T5-XXL LoRA needs "
                         "the encoder run every step (sd-scripts raises the same error)")
    candidates: list[FluxModule] = []
    if not network_train_unet_only:
        if clip_l_layers:
            candidates += clip_l_modules(clip_l_layers)
        if args.train_t5xxl:
            candidates += t5xxl_modules(t5_layers)
    if not network_train_text_encoder_only:
        if args.train_blocks == "all":
            dit = transformer_modules(num_double, num_single, guidance=guidance, chroma=chroma)
        elif args.train_blocks == "single":
            dit = transformer_modules(0, num_single, chroma=chroma)
        else:
            dit = transformer_modules(num_double, 0, chroma=chroma)
        candidates += dit
        if args.in_dims:
            candidates += transformer_modules(0, 0, guidance=guidance, chroma=chroma, embedders=True)
    out = []
    for m in candidates:
        dim, alpha = _module_rank(args, m)
        if dim:
            out.append(_planned(m, dim, alpha))
    return out


def modules_from_weights(names_dims_alphas: dict[str, tuple[int, float | int]], *, num_double: int,
                         num_single: int, guidance: bool = True, chroma: bool = False,
                         clip_l_layers: int | None = 12, t5_layers: int = 24) -> list[PlannedModule]:
    """``create_network_from_weights``: the table's modules that the file has, with the file's rank and alpha,
    in table order. ``names_dims_alphas``: kohya name -> (rank, alpha)."""
    table = ((clip_l_modules(clip_l_layers) if clip_l_layers else []) + t5xxl_modules(t5_layers)
             + transformer_modules(num_double, num_single, guidance=guidance, chroma=chroma, embedders=True))
    return [_planned(m, *names_dims_alphas[m.kohya_name]) for m in table if m.kohya_name in names_dims_alphas]
