"""LC209 cache-latents-with-augmentation: cache_latents with color_aug or random_crop: sd-scripts asserts."""

from __future__ import annotations

from collections.abc import Iterable

from lora_compat.config.model import CanonicalConfig
from lora_compat.lint.finding import Finding
from lora_compat.lint.query import subset_scopes, truthy
from lora_compat.lint.registry import Rule, register


@register
class CacheLatentsWithAugmentation(Rule):
    """``cache_latents`` cannot be combined with ``color_aug`` or ``random_crop``.

    Cached latents are computed once, so per-step pixel augmentations are impossible: sd-scripts asserts that no subset
    uses ``color_aug`` or ``random_crop`` when latents are cached. ``flip_aug`` is fine (flipped latents are cached
    too).

    **Anti-pattern**

    ```toml
    cache_latents = true
    color_aug = true
    ```

    **Best practice**

    ```toml
    cache_latents = true
    flip_aug = true
    ```
    """

    code, name, severity = "LC209", "caches.cache_latents_with_augmentation", "error"
    groups = ("caches",)
    summary = "cache_latents with color_aug or random_crop: sd-scripts asserts."
    message = "{aug}{where} cannot be used with cache_latents: sd-scripts stops with an AssertionError"
    reference = "sd-scripts library/train_util.py add_dataset_arguments, train_network.py NetworkTrainer.train"
    note_codes = ("derrian-a2-random-crop-with-cache", "derrian-a1-color-aug-aborts")

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        if not (truthy(cfg.get("cache_latents")) or truthy(cfg.get("cache_latents_to_disk"))):
            return
        for sc in subset_scopes(cfg):
            for aug in ("color_aug", "random_crop"):
                if truthy(sc.value(cfg, aug, False)):
                    yield self.finding(cfg, origin=sc.origin(cfg, aug), option=aug, aug=aug, where=sc.where)
