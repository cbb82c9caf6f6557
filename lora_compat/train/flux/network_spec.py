"""Which LoRA modules a FLUX.1 run trains, from the one place the rules live: :mod:`lora_compat.arch.flux`
(``sd_scripts_flux_network``: sd-scripts' ``networks.lora_flux`` module set, ranks and alphas, checked there
against every case of golden ``flux_lora_keys.json``; ``flux_table``: the pinned BFL <-> diffusers module table).

Plain Python (no torch). This module adds what the trainer needs on top: the ``network_args`` that do not
change the module set (dropouts, ``network_reg_lrs``, LoRA+ ratios), the restriction to a model's block counts
(the tiny models have fewer blocks than FLUX.1's 19 + 38) and the model part each module lives in.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from lora_compat.arch import flux as arch_flux
from lora_compat.semantics.args import pattern_values

#: arch table part -> key of the models dict / :class:`~lora_compat.train.flux.tiny.FluxComponents` field
MODEL_KEY = {"transformer": "transformer", "te1": "clip_l", "te3": "t5xxl"}
VARIANTS = arch_flux.FLUX_VARIANTS


def _flag(value: str | None) -> bool:
    return value == "True"   # sd-scripts compares with the exact string "True"


@dataclass
class FluxNetworkArgs:
    """``lora_flux.create_network``'s arguments as sd-scripts holds them (``network_alpha`` keeps argparse's int
    default 1; ``raw`` are the ``network_args`` strings) plus the training-time ones parsed from them."""

    network_dim: int | None = None
    network_alpha: float | int | None = 1
    dropout: float | None = None            # --network_dropout (on the rank activations)
    rank_dropout: float | None = None
    module_dropout: float | None = None
    split_qkv: bool = False
    train_t5xxl: bool = False
    reg_lrs: dict[str, float] | None = None
    loraplus_lr_ratio: float | None = None
    loraplus_unet_lr_ratio: float | None = None
    loraplus_text_encoder_lr_ratio: float | None = None
    raw: dict[str, str] = field(default_factory=dict)


def parse_network_args(network_dim: int | None, network_alpha: float | int | None,
                       network_args: Mapping[str, object] | None = None,
                       network_dropout: float | None = None) -> FluxNetworkArgs:
    """The arguments of one run (values of ``network_args`` as strings, as sd-scripts receives them)."""
    kw = {k: str(v) for k, v in (network_args or {}).items()}
    out = FluxNetworkArgs(network_dim=network_dim, network_alpha=network_alpha, dropout=network_dropout, raw=kw)
    for name in ("rank_dropout", "module_dropout", "loraplus_lr_ratio", "loraplus_unet_lr_ratio",
                 "loraplus_text_encoder_lr_ratio"):
        if name in kw:
            setattr(out, name, float(kw[name]))
    out.split_qkv = _flag(kw.get("split_qkv"))
    out.train_t5xxl = _flag(kw.get("train_t5xxl"))
    if "network_reg_lrs" in kw:
        out.reg_lrs = pattern_values(kw["network_reg_lrs"], as_int=False)
    return out


@dataclass(frozen=True)
class PlannedModule:
    """A module the network will wrap: its :class:`~lora_compat.arch.flux.FluxModule`, rank and alpha (int or
    float, as sd-scripts' buffer) and the number of ``split_qkv`` sub-LoRAs (1 unless split)."""

    module: arch_flux.FluxModule
    rank: int
    alpha: float | int
    split: int = 1

    @property
    def kohya_name(self) -> str:
        return self.module.kohya_name

    @property
    def part(self) -> str:
        """The model it lives in: ``transformer``, ``clip_l`` or ``t5xxl``."""
        return MODEL_KEY[self.module.part]

    @property
    def paths(self) -> tuple[str, ...]:
        """The diffusers / transformers module paths, in the fused module's row order."""
        return tuple(p.diffusers_path for p in self.module.parts)

    @property
    def fused(self) -> bool:
        return self.module.fused

    @property
    def scale(self) -> float:
        """``alpha / rank``, the factor on ``up @ down``."""
        return float(self.alpha) / self.rank


def _fits(m: arch_flux.FluxModule, num_double: int, num_single: int, clip_l_layers: int, t5_layers: int) -> bool:
    if m.part == "te1":
        return m.block is not None and m.block < clip_l_layers
    if m.part == "te3":
        return m.block is not None and m.block < t5_layers
    if m.group == "double":
        return m.block is not None and m.block < num_double
    if m.group == "single":
        return m.block is not None and m.block < num_single
    return True


def select_modules(args: FluxNetworkArgs, *, variant: str = "flux1-dev", num_double: int = 19,
                   num_single: int = 38, clip_l_layers: int = 12, t5_layers: int = 24,
                   network_train_unet_only: bool = False, network_train_text_encoder_only: bool = False,
                   cache_text_encoder_outputs: bool = False, apply_t5_attn_mask: bool = False) -> list[PlannedModule]:
    """The modules a fresh sd-scripts FLUX network trains (``arch.flux.sd_scripts_flux_network``), in its
    state-dict order, restricted to a model with these block and layer counts. Raises
    :class:`~lora_compat.arch.flux.FluxNetworkError` (a ``ValueError``) where sd-scripts refuses the options."""
    spec = arch_flux.FluxNetworkSpec(variant=variant, network_dim=args.network_dim, network_alpha=args.network_alpha,
                                     network_args=dict(args.raw), network_train_unet_only=network_train_unet_only,
                                     network_train_text_encoder_only=network_train_text_encoder_only,
                                     cache_text_encoder_outputs=cache_text_encoder_outputs,
                                     apply_t5_attn_mask=apply_t5_attn_mask)
    net = arch_flux.sd_scripts_flux_network(spec)
    return [PlannedModule(m.module, m.rank, m.alpha, m.split) for m in net.modules
            if _fits(m.module, num_double, num_single, clip_l_layers, t5_layers)]


def modules_from_weights(names_dims_alphas: Mapping[str, tuple[int, float | int]], *, variant: str = "flux1-dev",
                         num_double: int = 19, num_single: int = 38, clip_l_layers: int = 12,
                         t5_layers: int = 24) -> list[PlannedModule]:
    """``create_network_from_weights``: the modules sd-scripts can create that the file has, with the file's rank
    and alpha, in table order (a ``split_qkv`` file stays fused at rank n*r). ``names_dims_alphas``: kohya name ->
    (rank, alpha)."""
    table = arch_flux.flux_table(variant)
    out = []
    for m in table.modules:
        if m.sd_scripts and m.kohya_name in names_dims_alphas \
                and _fits(m, num_double, num_single, clip_l_layers, t5_layers):
            rank, alpha = names_dims_alphas[m.kohya_name]
            out.append(PlannedModule(m, int(rank), rank if alpha is None or alpha == 0 else alpha))
    return out

