"""Which optimizer sd-scripts builds for a config, and Adafactor's ``relative_step``."""

from __future__ import annotations

from lora_compat.config.model import CanonicalConfig
from lora_compat.lint.query import get_str, kv_items, truthy


def optimizer_name(cfg: CanonicalConfig) -> str:
    """The effective optimizer, lower-case: the legacy flags win (``use_8bit_adam`` -> ``adamw8bit``), else
    ``optimizer_type`` (default ``adamw``), as sd-scripts' library/train_util.py ``get_optimizer`` decides."""
    if truthy(cfg.get("use_8bit_adam")):
        return "adamw8bit"
    if truthy(cfg.get("use_lion_optimizer")):
        return "lion"
    return (get_str(cfg, "optimizer_type") or "AdamW").lower()


def adafactor_relative_step(cfg: CanonicalConfig) -> bool:
    """Adafactor with ``relative_step`` on (its default, or forced by ``warmup_init=True``): sd-scripts then
    replaces the scheduler with ``adafactor:<lr>`` (library/train_util.py ``get_optimizer``)."""
    if optimizer_name(cfg) != "adafactor":
        return False
    args = {k: (v or "").strip("'\"") for k, v in kv_items(cfg.get("optimizer_args"))}
    return args.get("relative_step", "True") == "True" or args.get("warmup_init") == "True"
