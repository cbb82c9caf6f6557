"""LC214 bucket-range-vs-resolution: min/max_bucket_reso do not contain the resolution: sd-scripts asserts."""

from __future__ import annotations

from collections.abc import Iterable

from lora_compat.config.model import CanonicalConfig
from lora_compat.lint.finding import Finding
from lora_compat.lint.query import as_number, dataset_scopes, effective, parse_resolution, truthy
from lora_compat.lint.registry import Rule, register
from lora_compat.semantics.buckets import round_bucket_limits


@register
class BucketRangeVsResolution(Rule):
    """The bucket range must contain the training resolution.

    With bucketing on, sd-scripts rounds ``min_bucket_reso`` down and ``max_bucket_reso`` up to multiples of
    ``bucket_reso_steps`` and asserts ``min(resolution) >= min_bucket_reso`` and ``max(resolution) <= max_bucket_reso``
    — even with ``bucket_no_upscale``.

    **Anti-pattern**

    ```toml
    resolution = "1024,1024"
    enable_bucket = true
    max_bucket_reso = 768
    ```

    **Best practice**

    ```toml
    resolution = "1024,1024"
    enable_bucket = true
    min_bucket_reso = 256
    max_bucket_reso = 2048
    ```
    """

    code, name, severity = "LC214", "buckets.bucket_range_vs_resolution", "error"
    groups = ("buckets",)
    summary = "min/max_bucket_reso do not contain the resolution: sd-scripts asserts."
    message = "{what}{where}: sd-scripts stops with an AssertionError"
    reference = ("sd-scripts library/train_util.py add_dataset_arguments, "
                 "BaseDataset.adjust_min_max_bucket_reso_by_steps")

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        for sc in dataset_scopes(cfg):
            if not truthy(sc.value(cfg, "enable_bucket", False)):
                continue
            res = parse_resolution(sc.value(cfg, "resolution"))
            steps = (as_number(sc.value(cfg, "bucket_reso_steps"))
                     or as_number(effective(cfg, "bucket_reso_steps")) or 64)
            lo = as_number(sc.value(cfg, "min_bucket_reso"))
            hi = as_number(sc.value(cfg, "max_bucket_reso"))
            lo = lo if lo is not None else as_number(effective(cfg, "min_bucket_reso"))
            hi = hi if hi is not None else as_number(effective(cfg, "max_bucket_reso"))
            if steps <= 0 or lo is None or hi is None:
                continue
            lo_adj, hi_adj = round_bucket_limits(int(lo), int(hi), int(steps))
            if lo_adj > hi_adj:
                yield self.finding(cfg, origin=sc.origin(cfg, "min_bucket_reso"), option="min_bucket_reso",
                                   what=f"min_bucket_reso {lo:g} > max_bucket_reso {hi:g}", where=sc.where)
                continue
            if res is None:
                continue
            if min(res) < lo_adj:
                yield self.finding(cfg, origin=sc.origin(cfg, "min_bucket_reso") or sc.origin(cfg, "resolution"),
                                   option="min_bucket_reso",
                                   what=f"resolution {res[0]}x{res[1]} is below min_bucket_reso {lo_adj:g}",
                                   where=sc.where)
            if max(res) > hi_adj:
                yield self.finding(cfg, origin=sc.origin(cfg, "max_bucket_reso") or sc.origin(cfg, "resolution"),
                                   option="max_bucket_reso",
                                   what=f"resolution {res[0]}x{res[1]} is above max_bucket_reso {hi_adj:g}",
                                   where=sc.where)
