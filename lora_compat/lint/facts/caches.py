"""Whether a config caches text-encoder outputs (an SDXL-only option in sd-scripts' LoRA scripts)."""

from __future__ import annotations

from lora_compat.config.model import CanonicalConfig
from lora_compat.lint.query import truthy


def text_encoder_outputs_cached(cfg: CanonicalConfig) -> bool:
    """SDXL with ``cache_text_encoder_outputs`` (or its ``_to_disk`` variant) on."""
    return cfg.is_sdxl and (truthy(cfg.get("cache_text_encoder_outputs"))
                            or truthy(cfg.get("cache_text_encoder_outputs_to_disk")))
