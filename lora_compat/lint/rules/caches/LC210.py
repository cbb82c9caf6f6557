"""LC210 cache-te-outputs-caption-randomness."""

from __future__ import annotations

from collections.abc import Iterable

from lora_compat.config.model import CanonicalConfig
from lora_compat.lint.facts.caches import text_encoder_outputs_cached
from lora_compat.lint.finding import Finding
from lora_compat.lint.query import as_number, subset_scopes, truthy
from lora_compat.lint.registry import Rule, register


@register
class CacheTeOutputsCaptionRandomness(Rule):
    """SDXL ``cache_text_encoder_outputs`` forbids caption shuffling, caption/tag dropout and token warmup.

    The text encoders run once per caption, so per-step caption changes are impossible. sd-scripts asserts that no
    subset has ``shuffle_caption``, ``caption_dropout_rate > 0``, ``caption_tag_dropout_rate > 0`` or
    ``token_warmup_step > 0``.

    **Anti-pattern**

    ```toml
    # sdxl_train_network.py
    cache_text_encoder_outputs = true
    network_train_unet_only = true
    shuffle_caption = true
    ```

    **Best practice**

    ```toml
    # sdxl_train_network.py
    cache_text_encoder_outputs = true
    network_train_unet_only = true
    shuffle_caption = false
    ```
    """

    code, name, severity = "LC210", "caches.cache_te_outputs_caption_randomness", "error"
    groups = ("caches", "captions", "sdxl")
    summary = "SDXL cache_text_encoder_outputs with shuffle/caption dropout/tag dropout/token warmup: asserts."
    message = "{opt}{where} cannot be used with cache_text_encoder_outputs: sd-scripts stops with an AssertionError"
    reference = ("sd-scripts library/sdxl_train_util.py add_sdxl_training_arguments, sdxl_train_network.py "
                 "SdxlNetworkTrainer.assert_extra_args")

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        if not text_encoder_outputs_cached(cfg):
            return
        for sc in subset_scopes(cfg):
            for opt in ("shuffle_caption", "caption_dropout_rate", "caption_tag_dropout_rate", "token_warmup_step"):
                v = sc.value(cfg, opt, 0)
                if (truthy(v) if opt == "shuffle_caption" else (as_number(v) or 0) > 0):
                    yield self.finding(cfg, origin=sc.origin(cfg, opt), option=opt, opt=opt, where=sc.where)
