"""What a FLUX.1 / Chroma config trains, as flux_train_network.py sees it: the family and model variant, the
inputs of sd-scripts' ``networks.lora_flux`` network (built by :func:`lora_compat.arch.flux.sd_scripts_flux_network`,
the one place its module-set rules and refusals live) and the keys only the fine-tuning script reads."""

from __future__ import annotations

import re

from lora_compat.arch import flux as arch_flux
from lora_compat.config.model import CanonicalConfig
from lora_compat.lint.facts.network import network_module_name
from lora_compat.lint.query import as_number, get_str, truthy

#: Families flux_train_network.py trains.
FLUX_FAMILIES = ("flux1", "chroma")

#: Options only sd-scripts' full fine-tuning script flux_train.py defines (its setup_parser): a LoRA run's TOML
#: keeps them without a word (read_config_from_file accepts any key) and flux_train_network.py never reads them;
#: on a flux_train_network.py command line they are "unrecognized arguments".
FINE_TUNE_ONLY: dict[str, str] = {
    "mem_eff_save": "memory-efficient saving of the fine-tuned checkpoint",
    "fused_optimizer_groups": "fused optimizer groups of the fine-tuning step",
    "blockwise_fused_optimizers": "one optimizer per block in the fine-tuning step",
    "skip_latents_validity_check": "skipping the cached latents' validity check",
    "double_blocks_to_swap": "deprecated per-type block swapping (blocks_to_swap replaced it)",
    "single_blocks_to_swap": "deprecated per-type block swapping (blocks_to_swap replaced it)",
}

_SCHNELL = re.compile(r"schnell", re.I)


def is_flux(cfg: CanonicalConfig) -> bool:
    """The config trains FLUX.1 or Chroma (flux_train_network.py)."""
    return cfg.family in FLUX_FAMILIES


def uses_lora_flux(cfg: CanonicalConfig) -> bool:
    """A FLUX config whose network is sd-scripts' ``networks.lora_flux`` (not OFT, LyCORIS ...)."""
    return is_flux(cfg) and network_module_name(cfg) == "networks.lora_flux"


def is_schnell(cfg: CanonicalConfig) -> bool:
    """The base model's name says FLUX.1 schnell (sd-scripts decides from the checkpoint: no ``guidance_in``)."""
    name = get_str(cfg, "pretrained_model_name_or_path") or ""
    return cfg.family == "flux1" and bool(_SCHNELL.search(name.replace("\\", "/").rsplit("/", 1)[-1]))


def variant(cfg: CanonicalConfig) -> str:
    """``flux1-dev``, ``flux1-schnell`` or ``chroma`` (:data:`lora_compat.arch.flux.FLUX_VARIANTS`)."""
    if cfg.family == "chroma":
        return "chroma"
    return "flux1-schnell" if is_schnell(cfg) else "flux1-dev"


def caches_text_encoder_outputs(cfg: CanonicalConfig) -> bool:
    """``cache_text_encoder_outputs``, also switched on by ``cache_text_encoder_outputs_to_disk``
    (flux_train_network.py ``assert_extra_args`` warns and sets it)."""
    return truthy(cfg.get("cache_text_encoder_outputs")) or truthy(cfg.get("cache_text_encoder_outputs_to_disk"))


def network_args(cfg: CanonicalConfig) -> dict[str, str]:
    """``network_args`` as networks.lora_flux receives them (string values; a repeated key keeps the last)."""
    from lora_compat.semantics.args import network_args as split

    return split(cfg.get("network_args"))


def network_spec(cfg: CanonicalConfig, *, cache_text_encoder_outputs: bool | None = None,
                 apply_t5_attn_mask: bool | None = None) -> arch_flux.FluxNetworkSpec:
    """The :class:`~lora_compat.arch.flux.FluxNetworkSpec` of this config (keyword arguments override a flag, so
    a rule can ask about the network_args alone)."""
    dim = as_number(cfg.get("network_dim"))
    alpha = as_number(cfg.get("network_alpha"))
    return arch_flux.FluxNetworkSpec(
        variant=variant(cfg),
        network_dim=None if dim is None else int(dim),
        network_alpha=1 if alpha is None else float(alpha),
        network_args=network_args(cfg),
        network_train_unet_only=truthy(cfg.get("network_train_unet_only")),
        network_train_text_encoder_only=truthy(cfg.get("network_train_text_encoder_only")),
        cache_text_encoder_outputs=(caches_text_encoder_outputs(cfg) if cache_text_encoder_outputs is None
                                    else cache_text_encoder_outputs),
        apply_t5_attn_mask=(truthy(cfg.get("apply_t5_attn_mask")) if apply_t5_attn_mask is None
                            else apply_t5_attn_mask))


def network_error(cfg: CanonicalConfig, **overrides: bool) -> arch_flux.FluxNetworkError | None:
    """What sd-scripts raises building this config's networks.lora_flux network (None when it builds)."""
    try:
        arch_flux.sd_scripts_flux_network(network_spec(cfg, **overrides))
    except arch_flux.FluxNetworkError as exc:
        return exc
    return None


def network_arg_problems(cfg: CanonicalConfig) -> list:
    """``network_args`` items sd-scripts stops on before any network sees them (no ``=``)."""
    from lora_compat.semantics.args import network_arg_problems as problems

    return problems(cfg.get("network_args"))


def network(cfg: CanonicalConfig) -> arch_flux.FluxNetwork | None:
    """sd-scripts' networks.lora_flux network for this config; None where sd-scripts refuses the options."""
    try:
        return arch_flux.sd_scripts_flux_network(network_spec(cfg))
    except arch_flux.FluxNetworkError:
        return None


def recommended(cfg: CanonicalConfig, option: str) -> object | None:
    """The value sd-scripts' documentation recommends for this family where it differs from the default
    (the schema's ``x-recommended``: guidance_scale 1.0 for FLUX.1 and 0.0 for Chroma, model_prediction_type raw)."""
    from lora_compat.config.options import spec

    rec = (spec(option) or {}).get("x-recommended") or {}
    return rec.get(cfg.family) if isinstance(rec, dict) else None
