"""Pinned module-name tables for SD1, SD2 and SDXL: kohya LoRA names <-> diffusers/PEFT module paths.

Light module (no torch, no diffusers): the plan, train and weights wings all import it.

Typical use::

    from lora_compat.arch import kohya_modules, lookup_kohya, diffusers_to_kohya
    mods = kohya_modules("sdxl", algo="locon")          # what sd-scripts' networks.lora creates
    info = lookup_kohya("lora_unet_input_blocks_4_1_proj_in", "sdxl")
    info.part, info.diffusers_path                       # ("unet", "down_blocks.1.attentions.0.proj_in")
    diffusers_to_kohya("encoder.layers.0.mlp.fc1", "te1", "sd1")  # accepts transformers-5 paths too
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from lora_compat.arch.topology import (
    ARCHS,
    PART_COMPONENTS,
    PARTS,
    TE_TOPOLOGY,
    ModuleInfo,
    build_te_table,
    build_unet_table,
)

__all__ = [
    "ARCHS",
    "PARTS",
    "PART_COMPONENTS",
    "ArchTable",
    "ModelPart",
    "ModuleInfo",
    "all_modules",
    "component_part",
    "diffusers_to_kohya",
    "kohya_modules",
    "kohya_name_prefixes",
    "kohya_prefix",
    "kohya_to_diffusers",
    "lookup_kohya",
    "lookup_path",
    "model_parts",
    "peft_target_modules",
    "table",
    "te_parts",
]

#: Algorithms -> which module groups sd-scripts targets (networks.lora; LoCon = conv_dim set).
ALGO_GROUPS: dict[str, frozenset[str]] = {
    "lora": frozenset({"attention", "text"}),
    "locon": frozenset({"attention", "text", "resnet", "sampler"}),
    "all": frozenset({"attention", "text", "resnet", "sampler", "extra"}),
}


@dataclass(frozen=True)
class ArchTable:
    """Every module of one architecture plus the indexes used to resolve names (built once, cached)."""

    arch: str
    modules: tuple[ModuleInfo, ...]
    by_kohya: dict[str, ModuleInfo]          # every accepted kohya spelling -> module
    by_path: dict[tuple[str, str], ModuleInfo]  # (part, path) for every accepted path spelling -> module


#: kohya text-encoder prefixes accepted on input besides the canonical one: A1111/ComfyUI/diffusers also write
#: ``lora_te1_`` for the single SD1 text encoder.
TE_PREFIX_ALIASES: dict[str, dict[str, tuple[str, ...]]] = {"sd1": {"te1": ("lora_te1",)}}


def _aliases(info: ModuleInfo, arch: str) -> list[str]:
    """Other kohya spellings seen in the wild for the same module (accepted on input, never written)."""
    out = []
    if info.part == "unet" and info.sgm_path:
        out.append("lora_unet_" + info.diffusers_path.replace(".", "_"))   # diffusers-named SDXL variant
        out.append("lora_unet_" + info.sgm_path.replace(".", "_"))         # SGM-named SD1/SD2 extractions
    if info.part != "unet":
        canonical = TE_TOPOLOGY[arch][info.part][0]
        for alias in TE_PREFIX_ALIASES.get(arch, {}).get(info.part, ()):
            out.append(alias + info.kohya_name[len(canonical):])
    return [a for a in out if a != info.kohya_name]


@cache
def kohya_name_prefixes(arch: str) -> tuple[str, ...]:
    """Every prefix (with its trailing ``_``) a kohya module name of ``arch`` can start with, aliases included.

    Cheap (no table is built): readers use it to rule out architectures before resolving names.
    """
    out = ["lora_unet_"]
    for part, (prefix, *_rest) in TE_TOPOLOGY[arch].items():
        out += [p + "_" for p in (prefix, *TE_PREFIX_ALIASES.get(arch, {}).get(part, ()))]
    return tuple(out)


@cache
def table(arch: str) -> ArchTable:
    """The module table of ``arch`` (``sd1``, ``sd2`` or ``sdxl``)."""
    if arch not in ARCHS:
        raise ValueError(f"unknown architecture {arch!r}; expected one of {', '.join(ARCHS)}")
    modules = tuple(build_te_table(arch) + build_unet_table(arch))
    by_kohya: dict[str, ModuleInfo] = {}
    by_path: dict[tuple[str, str], ModuleInfo] = {}
    for info in modules:
        # Canonical names first: an alias must never shadow a canonical name.
        if info.kohya_name in by_kohya:
            raise AssertionError(f"{arch}: kohya name collision {info.kohya_name}")
        by_kohya[info.kohya_name] = info
        key = (info.part, info.diffusers_path)
        if key in by_path:
            raise AssertionError(f"{arch}: path collision {key}")
        by_path[key] = info
    for info in modules:
        for alias in _aliases(info, arch):
            other = by_kohya.setdefault(alias, info)
            if other is not info:
                raise AssertionError(f"{arch}: alias {alias} is ambiguous")
        flat = info.te_path(5)
        if flat != info.diffusers_path:
            by_path.setdefault((info.part, flat), info)
    return ArchTable(arch, modules, by_kohya, by_path)


def all_modules(arch: str) -> list[ModuleInfo]:
    """Every module of ``arch`` that some trainer targets (sd-scripts targets plus ``extra`` ones)."""
    return list(table(arch).modules)


def kohya_modules(arch: str, algo: str = "lora", te: bool = True, unet: bool = True) -> list[ModuleInfo]:
    """The modules sd-scripts' ``networks.lora`` creates for ``arch``.

    ``algo="lora"``: transformer-block Linears/1x1 convs + text encoders; ``"locon"`` (``conv_dim`` set) adds
    ResNet convs, ``time_emb_proj``, ``conv_shortcut`` and down/upsamplers; ``"all"`` also the ``extra`` modules
    (conv_in, conv_out, time/add embeddings, TE2 text_projection) that only other trainers target.
    """
    if algo not in ALGO_GROUPS:
        raise ValueError(f"unknown algo {algo!r}; expected one of {', '.join(ALGO_GROUPS)}")
    groups = ALGO_GROUPS[algo]
    return [m for m in table(arch).modules
            if m.group in groups and ((m.part == "unet" and unet) or (m.part != "unet" and te))]


def lookup_kohya(name: str, arch: str) -> ModuleInfo | None:
    """The module a kohya module name (text before the first ``.``) denotes, or None when unknown.

    Accepts SGM and diffusers UNet spellings for every arch and ``lora_te1_`` for SD1.
    """
    return table(arch).by_kohya.get(name)


def kohya_to_diffusers(name: str, arch: str, transformers_major: int = 4) -> tuple[str, str]:
    """(part, module path) for a kohya module name; raises KeyError when the name is not in the table."""
    info = table(arch).by_kohya.get(name)
    if info is None:
        raise KeyError(f"{name!r} is not a {arch} module")
    return info.part, info.te_path(transformers_major)


def lookup_path(path: str, part: str, arch: str) -> ModuleInfo | None:
    """The module at diffusers/PEFT ``path`` of ``part`` (TE paths with or without ``text_model.``), or None."""
    return table(arch).by_path.get((part, path))


def diffusers_to_kohya(path: str, part: str, arch: str) -> str:
    """The canonical kohya module name (sd-scripts spelling) for a diffusers/PEFT path; KeyError when unknown."""
    info = lookup_path(path, part, arch)
    if info is None:
        raise KeyError(f"{part} module {path!r} is not a {arch} module")
    return info.kohya_name


def te_parts(arch: str) -> tuple[str, ...]:
    """Text-encoder parts of ``arch``: ("te1",) for SD1/SD2, ("te1", "te2") for SDXL."""
    return tuple(TE_TOPOLOGY[arch])


def kohya_prefix(part: str, arch: str) -> str:
    """kohya name prefix (without the trailing ``_``) of ``part``: lora_unet, lora_te, lora_te1, lora_te2."""
    if part == "unet":
        return "lora_unet"
    try:
        return TE_TOPOLOGY[arch][part][0]
    except KeyError:
        raise ValueError(f"{arch} has no part {part!r}") from None


def peft_target_modules(arch: str, part: str, algo: str = "lora", transformers_major: int = 4) -> list[str]:
    """Full module paths (for PEFT ``target_modules``) that sd-scripts would target in ``part`` of ``arch``.

    Full paths, not suffixes: a suffix list would also inject into same-named modules sd-scripts leaves alone.
    """
    return [m.te_path(transformers_major) for m in kohya_modules(arch, algo) if m.part == part]


@dataclass(frozen=True)
class ModelPart:
    """One part of a model a LoRA adapts, under each of its names: ``part`` (the module tables' id: unet, te1,
    te2), ``component`` (the diffusers pipeline component, also the training plan's and PEFT's name) and
    ``kohya_prefix`` (sd-scripts' LoRA name prefix, without the trailing ``_``)."""

    part: str
    component: str
    kohya_prefix: str


def model_parts(arch: str) -> tuple[ModelPart, ...]:
    """The parts of ``arch`` with their names: the one table of unet / te1 / te2 <-> component <-> kohya prefix."""
    if arch not in ARCHS:
        raise ValueError(f"unknown architecture {arch!r}; expected one of {', '.join(ARCHS)}")
    return tuple(ModelPart(p, PART_COMPONENTS[p], kohya_prefix(p, arch)) for p in ("unet", *te_parts(arch)))


def component_part(component: str) -> str:
    """The module tables' part id of a diffusers component name (``text_encoder_2`` -> ``te2``)."""
    for part, comp in PART_COMPONENTS.items():
        if comp == component:
            return part
    raise ValueError(f"unknown model component {component!r}; expected one of {', '.join(PART_COMPONENTS.values())}")

