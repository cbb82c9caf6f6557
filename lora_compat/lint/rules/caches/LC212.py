"""LC212 cache-te-outputs-ignores-caption-options."""

from __future__ import annotations

from collections.abc import Iterable

from lora_compat.config.model import CanonicalConfig
from lora_compat.lint.facts.caches import text_encoder_outputs_cached
from lora_compat.lint.finding import Finding
from lora_compat.lint.query import as_number, subset_scopes, truthy
from lora_compat.lint.registry import Rule, register


@register
class CacheTeOutputsIgnoresCaptionOptions(Rule):
    """With SDXL ``cache_text_encoder_outputs`` caption processing never runs: these caption options are ignored.

    The raw caption is encoded once; ``process_caption`` is never called, so ``caption_prefix``, ``caption_suffix``,
    wildcards, ``secondary_separator``, ``keep_tokens_separator`` and ``caption_dropout_every_n_epochs`` are silently
    ignored.

    **Anti-pattern**

    ```toml
    # sdxl_train_network.py
    cache_text_encoder_outputs = true
    network_train_unet_only = true
    caption_prefix = "mychar"
    ```

    **Best practice**

    ```toml
    # sdxl_train_network.py
    cache_text_encoder_outputs = true
    network_train_unet_only = true
    # write "mychar" into the caption files instead
    ```
    """

    code, name, severity = "LC212", "caches.cache_te_outputs_ignores_caption_options", "warning"
    groups = ("caches", "captions", "sdxl")
    summary = "SDXL cache_text_encoder_outputs silently ignores prefix/suffix/wildcards/separators."
    message = "{opt}{where} is ignored: with cache_text_encoder_outputs captions are encoded raw, never processed"
    reference = "sd-scripts library/strategy_sdxl.py SdxlTextEncoderOutputsCachingStrategy"

    OPTIONS = ("caption_prefix", "caption_suffix", "enable_wildcard", "secondary_separator",
               "keep_tokens_separator", "caption_dropout_every_n_epochs")

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        if not text_encoder_outputs_cached(cfg):
            return
        for sc in subset_scopes(cfg):
            for opt in self.OPTIONS:
                v = sc.value(cfg, opt)
                n = as_number(v)
                if truthy(v) and (n is None or n > 0):
                    yield self.finding(cfg, origin=sc.origin(cfg, opt), option=opt, opt=opt, where=sc.where)
