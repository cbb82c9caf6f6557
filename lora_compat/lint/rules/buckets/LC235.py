"""LC235 face-crop-ignored: face_crop_aug_range with bucketing or cached latents is ignored."""

from __future__ import annotations

from collections.abc import Iterable

from lora_compat.config.model import CanonicalConfig
from lora_compat.lint.finding import Finding
from lora_compat.lint.query import subset_scopes, truthy
from lora_compat.lint.registry import Rule, register


@register
class FaceCropIgnored(Rule):
    """``face_crop_aug_range`` is ignored with bucketing or cached latents.

    It is only used when bucketing is off, latents are not cached and the file name carries face information.

    **Anti-pattern**

    ```toml
    enable_bucket = true
    face_crop_aug_range = "2.0,4.0"
    ```

    **Best practice**

    ```toml
    enable_bucket = false
    cache_latents = false
    face_crop_aug_range = "2.0,4.0"
    ```
    """

    code, name, severity = "LC235", "buckets.face_crop_ignored", "warning"
    groups = ("buckets",)
    summary = "face_crop_aug_range with bucketing or cached latents is ignored."
    message = "face_crop_aug_range{where} is ignored because {why}"
    reference = "sd-scripts library/train_util.py add_dataset_arguments, train_network.py NetworkTrainer.train"

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        cached = truthy(cfg.get("cache_latents")) or truthy(cfg.get("cache_latents_to_disk"))
        for sc in subset_scopes(cfg):
            if not sc.value(cfg, "face_crop_aug_range"):
                continue
            if truthy(sc.value(cfg, "enable_bucket", False)):
                why = "bucketing is on"
            elif cached:
                why = "latents are cached"
            else:
                continue
            yield self.finding(cfg, origin=sc.origin(cfg, "face_crop_aug_range"), option="face_crop_aug_range",
                               where=sc.where, why=why)
