"""Optimizer parameter groups of networks whose rule is not the SD one (stdlib only).

:func:`flux_param_groups` is ``networks.lora_flux.LoRANetwork.prepare_optimizer_params_with_multiple_te_lrs``
(sd-scripts 48d368f): the plan lists its groups and the FLUX network fills them with tensors, so both use this
one function.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

#: FLUX model parts in sd-scripts' group order, with the label of its ``lr_descriptions``.
FLUX_PARTS = (("clip_l", "textencoder 1"), ("t5xxl", "textencoder 2"), ("transformer", "unet"))


@dataclass(frozen=True)
class ParamGroup:
    """One optimizer group.

    ``part``: ``clip_l`` / ``t5xxl`` / ``transformer``; ``pattern``: the ``network_reg_lrs`` regex whose modules
    it holds (None: the part's other modules); ``lora_plus``: the group of the ``lora_up`` tensors that LoRA+ gives
    ``lr x ratio``; ``modules``: the kohya names whose tensors it holds (``lora_down`` and, unless LoRA+ separates
    them, ``lora_up``); ``description``: sd-scripts' ``lr_descriptions`` entry (spaces normalised).
    """

    part: str
    lr: float
    lora_plus: bool
    pattern: str | None
    modules: tuple[str, ...]
    description: str


def text_encoder_lrs(text_encoder_lr: float | Sequence[float] | None, default_lr: float | None) -> list[float | None]:
    """``text_encoder_lr`` as the two learning rates [CLIP-L, T5-XXL] (one value or a one-element list: both;
    None or an empty list: ``default_lr``)."""
    if text_encoder_lr is None or (isinstance(text_encoder_lr, (list, tuple)) and not text_encoder_lr):
        return [default_lr, default_lr]
    if isinstance(text_encoder_lr, (int, float)):
        return [float(text_encoder_lr)] * 2
    lrs = list(text_encoder_lr)
    return lrs * 2 if len(lrs) == 1 else lrs


def _search(pattern: str, name: str) -> bool:
    try:
        return re.search(pattern, name) is not None
    except re.error:
        return False   # sd-scripts skips a regex that does not compile


def flux_param_groups(modules: Sequence[tuple[str, str]], text_encoder_lr: float | Sequence[float] | None,
                      unet_lr: float | None, default_lr: float | None, *, reg_lrs: Mapping[str, float] | None = None,
                      loraplus_lr_ratio: float | None = None, loraplus_unet_lr_ratio: float | None = None,
                      loraplus_text_encoder_lr_ratio: float | None = None) -> list[ParamGroup]:
    """The optimizer groups of an sd-scripts FLUX network, in its order. ``modules``: (part, kohya name) pairs.

    CLIP-L, then T5-XXL (:func:`text_encoder_lrs`), then the DiT (``unet_lr``, else ``default_lr``). Within a
    part: the ``network_reg_lrs`` groups first (a module joins the first regex that ``re.search``-es its kohya
    name; groups in the *string* order of their ``reg_lr_<i>`` keys, as sd-scripts sorts them), then the part's
    other modules; each split into the plain group and, with a LoRA+ ratio (the part's ratio, else
    ``loraplus_lr_ratio``), the ``lora_up`` group at lr x ratio. A group whose lr is 0 or None is dropped (its
    modules are still created and saved, untrained).
    """
    reg = list((reg_lrs or {}).items())
    te = text_encoder_lrs(text_encoder_lr, default_lr)
    lrs = {"clip_l": te[0], "t5xxl": te[1], "transformer": unet_lr if unet_lr is not None else default_lr}
    te_ratio = loraplus_text_encoder_lr_ratio or loraplus_lr_ratio
    ratios = {"clip_l": te_ratio, "t5xxl": te_ratio, "transformer": loraplus_unet_lr_ratio or loraplus_lr_ratio}
    out: list[ParamGroup] = []
    for part, label in FLUX_PARTS:
        names = [name for p, name in modules if p == part]
        if not names:
            continue
        lr, ratio = lrs[part], ratios[part]
        plain: list[str] = []
        regs: dict[int, list[str]] = {}
        for name in names:
            hit = next((i for i, (rx, _) in enumerate(reg) if _search(rx, name)), None)
            (plain if hit is None else regs.setdefault(hit, [])).append(name)
        kinds = (False, True) if ratio is not None else (False,)
        for i in sorted(regs, key=lambda k: f"reg_lr_{k}"):
            pattern, reg_lr = reg[i]
            for plus in kinds:
                group_lr = reg_lr * ratio if plus and ratio is not None else reg_lr
                if group_lr:
                    out.append(ParamGroup(part, float(group_lr), plus, pattern, tuple(regs[i]),
                                          f"{label} reg_lr_{i}" + (" plus" if plus else "")))
        if plain:
            for plus in kinds:
                plain_lr = None if lr is None else (lr * ratio if plus and ratio is not None else lr)
                if plain_lr:
                    out.append(ParamGroup(part, float(plain_lr), plus, None, tuple(plain),
                                          label + (" plus" if plus else "")))
    return out
