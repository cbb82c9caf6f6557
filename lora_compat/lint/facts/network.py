"""The LoRA network a config builds: module and rank as sd-scripts resolves them."""

from __future__ import annotations

from lora_compat.config.model import CanonicalConfig
from lora_compat.lint.query import as_number, get_str


def network_module_name(cfg: CanonicalConfig) -> str:
    """``network_module`` without a leading ``sd_scripts.`` (default ``networks.lora``)."""
    m = get_str(cfg, "network_module") or "networks.lora"
    return m[len("sd_scripts."):] if m.startswith("sd_scripts.") else m


def network_rank(cfg: CanonicalConfig) -> float | None:
    """``network_dim``: networks.lora/dylora use 4 when it is unset (sd-scripts networks/lora.py ``create_network``)."""
    d = as_number(cfg.get("network_dim"))
    return 4.0 if d is None else d
