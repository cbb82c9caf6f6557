"""LC213 bucket-reso-steps-multiple: bucket_reso_steps is not a multiple of 64 (SD1/SD2) or 32 (SDXL)."""

from __future__ import annotations

from collections.abc import Iterable

from lora_compat.config.model import CanonicalConfig
from lora_compat.lint.finding import Finding
from lora_compat.lint.query import as_number, dataset_scopes, truthy
from lora_compat.lint.registry import Rule, register


@register
class BucketResoStepsMultiple(Rule):
    """``bucket_reso_steps`` must be a multiple of 64 (SD1/SD2) or 32 (SDXL) when bucketing is on.

    sd-scripts asserts ``bucket_reso_steps % 64 == 0`` in train_network.py and ``% 32 == 0`` in sdxl_train_network.py.

    **Anti-pattern**

    ```toml
    enable_bucket = true
    bucket_reso_steps = 32     # SD1.5
    ```

    **Best practice**

    ```toml
    enable_bucket = true
    bucket_reso_steps = 64
    ```
    """

    code, name, severity = "LC213", "buckets.bucket_reso_steps_multiple", "error"
    groups = ("buckets",)
    summary = "bucket_reso_steps is not a multiple of 64 (SD1/SD2) or 32 (SDXL)."
    message = ("bucket_reso_steps = {v}{where} is not a multiple of {m} ({arch}): sd-scripts stops with an "
               "AssertionError")
    reference = ("sd-scripts library/train_util.py add_dataset_arguments, train_network.py "
                 "NetworkTrainer.assert_extra_args")

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        if not cfg.is_sd_family:
            return  # the 64/32 asserts are train_network.py's and sdxl_train_network.py's
        # a bare dataset config does not say which script reads it: only 32 (valid for neither) is certain
        m = 32 if (cfg.is_sdxl or cfg.dialect == "sd-scripts-dataset") else 64
        for sc in dataset_scopes(cfg):
            if not truthy(sc.value(cfg, "enable_bucket", False)):
                continue
            v = as_number(sc.value(cfg, "bucket_reso_steps"))
            if v is None or v < 8:
                continue   # tiny values are the LC318 misconception
            if v % m:
                yield self.finding(cfg, origin=sc.origin(cfg, "bucket_reso_steps"), option="bucket_reso_steps",
                                   v=int(v), m=m, arch=cfg.arch().upper(), where=sc.where)
