"""LC317 bucket-reso-steps-tiny: bucket_reso_steps tiny (< 8): it is a pixel grid (64, or 32 for SDXL)."""

from __future__ import annotations

from collections.abc import Iterable

from lora_compat.config.model import CanonicalConfig
from lora_compat.lint.finding import Finding
from lora_compat.lint.query import as_number, dataset_scopes, truthy
from lora_compat.lint.registry import Rule, register


@register
class BucketResoStepsTiny(Rule):
    """``bucket_reso_steps`` is the pixel grid of bucket sizes, not a number of doubling steps.

    A widely copied option table says: "Number of steps for increasing the resolution of the image … increases by a
    factor of 2 after each step". Wrong: bucket widths/heights are multiples of ``bucket_reso_steps`` pixels (64 by
    default; sd-scripts asserts a multiple of 64 for SD1/SD2 and 32 for SDXL).

    **Anti-pattern**

    ```json
    {"bucket_reso_steps": 3}
    ```

    **Best practice**

    ```json
    {"bucket_reso_steps": 64}
    ```
    """

    code, name, severity = "LC317", "misconceptions.bucket_reso_steps_tiny", "error"
    groups = ("misconceptions", "buckets")
    summary = "bucket_reso_steps tiny (< 8): it is a pixel grid (64, or 32 for SDXL)."
    message = ("bucket_reso_steps = {v:g} is a pixel grid for bucket sizes (use 64, or 32 for SDXL), not a doubling "
               "count")
    reference = ("sd-scripts library/model_util.py make_bucket_resolutions, train_network.py "
                 "NetworkTrainer.assert_extra_args")

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        for sc in dataset_scopes(cfg):
            v = as_number(sc.value(cfg, "bucket_reso_steps"))
            if v is not None and 0 < v < 8:
                # only fatal when bucketing is on (sd-scripts then asserts the multiple)
                sev = None if truthy(sc.value(cfg, "enable_bucket", False)) else "warning"
                yield self.finding(cfg, origin=sc.origin(cfg, "bucket_reso_steps"), option="bucket_reso_steps", v=v,
                                   severity=sev)
