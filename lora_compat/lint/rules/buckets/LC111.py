"""LC111 face-crop-range-invalid: face_crop_aug_range is not two numbers lo <= hi."""

from __future__ import annotations

from collections.abc import Iterable

from lora_compat.config.model import CanonicalConfig
from lora_compat.lint.finding import Finding
from lora_compat.lint.query import subset_scopes
from lora_compat.lint.registry import Rule, register


@register
class FaceCropRangeInvalid(Rule):
    """``face_crop_aug_range`` must be two numbers ``"lo,hi"`` with lo <= hi.

    sd-scripts parses it into a float tuple and asserts two values with ``lo <= hi``.

    **Anti-pattern**

    ```toml
    face_crop_aug_range = "3.0,2.0"
    ```

    **Best practice**

    ```toml
    face_crop_aug_range = "2.0,4.0"
    ```
    """

    code, name, severity = "LC111", "buckets.face_crop_range_invalid", "error"
    groups = ("buckets",)
    summary = "face_crop_aug_range is not two numbers lo <= hi."
    message = "face_crop_aug_range = {value!r}: {reason}"
    reference = "sd-scripts library/train_util.py add_dataset_arguments, prepare_dataset_args"

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        for sc in subset_scopes(cfg):
            v = sc.value(cfg, "face_crop_aug_range")
            if v is None or v == "":
                continue
            parts = v.split(",") if isinstance(v, str) else list(v) if isinstance(v, (list, tuple)) else [v]
            try:
                nums = [float(p) for p in parts]
            except (TypeError, ValueError, OverflowError):
                nums = []
            if len(nums) != 2:
                reason = "needs exactly two numbers"
            elif nums[0] > nums[1]:
                reason = "lo > hi"
            else:
                continue
            yield self.finding(cfg, origin=sc.origin(cfg, "face_crop_aug_range"), option="face_crop_aug_range",
                               value=v, reason=reason)
