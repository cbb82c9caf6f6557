"""LC414 flux-train-t5xxl-with-te-cache: train_t5xxl=True with cached text-encoder outputs: ValueError at start."""

from __future__ import annotations

from collections.abc import Iterable

from lora_compat.config.model import CanonicalConfig
from lora_compat.lint.facts import flux
from lora_compat.lint.finding import Finding
from lora_compat.lint.registry import Rule, register


@register
class FluxTrainT5xxlWithTeCache(Rule):
    """``network_args`` ``train_t5xxl=True`` together with cached text-encoder outputs: sd-scripts refuses to start.

    A T5-XXL LoRA needs T5 to run on every step, so its outputs cannot come from a cache:
    ``flux_train_network.py`` (``FluxNetworkTrainer.post_process_network``) raises ``ValueError: T5XXL is
    trained, so cache_text_encoder_outputs cannot be used``. ``cache_text_encoder_outputs_to_disk`` switches
    ``cache_text_encoder_outputs`` on, so it counts too. Training CLIP-L alone is allowed with the cache (CLIP-L
    is re-encoded, T5 cached). Drop the cache, or drop ``train_t5xxl`` (most FLUX LoRAs train the transformer
    only).

    **Anti-pattern**

    ```toml
    network_module = "networks.lora_flux"
    cache_text_encoder_outputs = true
    network_args = ["train_t5xxl=True"]
    ```

    **Best practice**

    ```toml
    network_module = "networks.lora_flux"
    cache_text_encoder_outputs = true
    network_train_unet_only = true
    ```
    """

    code, name, severity = "LC414", "arch.flux_train_t5xxl_with_te_cache", "error"
    groups = ("arch", "flux")
    summary = "network_args train_t5xxl=True with cache_text_encoder_outputs: flux_train_network.py raises ValueError."
    message = ("train_t5xxl=True with {cache}: sd-scripts raises {error} (T5-XXL cannot be trained from cached "
               "outputs)")
    reference = "sd-scripts flux_train_network.py FluxNetworkTrainer.post_process_network"

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        if not flux.uses_lora_flux(cfg) or not flux.caches_text_encoder_outputs(cfg):
            return
        # the network_args alone build; with the cache they do not: the cache is the cause
        if flux.network_error(cfg, cache_text_encoder_outputs=False, apply_t5_attn_mask=True) is not None:
            return
        err = flux.network_error(cfg, apply_t5_attn_mask=True)
        if err is None:
            return
        opt = "cache_text_encoder_outputs" if cfg.is_set("cache_text_encoder_outputs") else \
            "cache_text_encoder_outputs_to_disk"
        yield self.finding(cfg, option=opt, cache=opt, error=err.sd_scripts_error)
