"""LC211 cache-te-outputs-needs-unet-only: SDXL cache_text_encoder_outputs without network_train_unet_only: asserts."""

from __future__ import annotations

from collections.abc import Iterable

from lora_compat.config.model import CanonicalConfig
from lora_compat.lint.facts.caches import text_encoder_outputs_cached
from lora_compat.lint.finding import Finding
from lora_compat.lint.query import truthy
from lora_compat.lint.registry import Rule, register


@register
class CacheTeOutputsNeedsUnetOnly(Rule):
    """SDXL ``cache_text_encoder_outputs`` requires ``network_train_unet_only``.

    Cached text-encoder outputs cannot carry gradients into a text-encoder LoRA, so sd-scripts asserts
    ``network_train_unet_only``.

    **Anti-pattern**

    ```toml
    # sdxl_train_network.py
    cache_text_encoder_outputs = true
    text_encoder_lr = 5e-5
    ```

    **Best practice**

    ```toml
    # sdxl_train_network.py
    cache_text_encoder_outputs = true
    network_train_unet_only = true
    ```
    """

    code, name, severity = "LC211", "caches.cache_te_outputs_needs_unet_only", "error"
    groups = ("caches", "sdxl")
    summary = "SDXL cache_text_encoder_outputs without network_train_unet_only: asserts."
    message = ("cache_text_encoder_outputs requires network_train_unet_only (the text encoders cannot be trained "
               "from a cache)")
    reference = ("sd-scripts library/sdxl_train_util.py add_sdxl_training_arguments, sdxl_train_network.py "
                 "SdxlNetworkTrainer.assert_extra_args")

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        if text_encoder_outputs_cached(cfg) and not truthy(cfg.get("network_train_unet_only")):
            opt = "cache_text_encoder_outputs" if "cache_text_encoder_outputs" in cfg.options \
                else "cache_text_encoder_outputs_to_disk"
            yield self.finding(cfg, option=opt)
