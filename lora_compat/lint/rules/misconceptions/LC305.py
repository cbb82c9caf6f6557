"""LC305 buckets-list: buckets/enable_bucket written as a list; it is the aspect-ratio bucketing switch."""

from __future__ import annotations

from collections.abc import Iterable

from lora_compat.config.model import CanonicalConfig
from lora_compat.lint.finding import Finding
from lora_compat.lint.query import raw_as_written
from lora_compat.lint.registry import register
from lora_compat.lint.rule_kinds import RawShapeRule


@register
class BucketsList(RawShapeRule):
    """Derrian's ``buckets`` (sd-scripts ``enable_bucket``) is a switch for aspect-ratio bucketing.

    A widely copied option table says: "buckets — List of integers … data having length of 5 tokens in one bucket".
    Wrong: bucketing groups *images* by aspect ratio into resolution buckets built from ``resolution``,
    ``min/max_bucket_reso`` and ``bucket_reso_steps``; the key is a boolean.

    **Anti-pattern**

    ```json
    {"buckets": [5, 10, 15]}
    ```

    **Best practice**

    ```json
    {"buckets": true, "min_bucket_resolution": 320, "max_bucket_resolution": 960}
    ```
    """

    code, name, severity = "LC305", "misconceptions.buckets_list", "error"
    groups = ("misconceptions", "buckets")
    summary = "buckets/enable_bucket written as a list; it is the aspect-ratio bucketing switch."
    message = ("{key_name} = {value!r}: bucketing is an on/off switch for image aspect-ratio buckets, not "
               "token-length buckets")
    reference = "sd-scripts library/model_util.py make_bucket_resolutions"
    option = "enable_bucket"
    legacy = ("buckets",)

    def shaped(self, v: object) -> bool:
        return isinstance(v, (list, tuple, dict))

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        raw = raw_as_written(cfg, self.option, *self.legacy)
        if raw is not None and self.shaped(raw.value):
            key_name = raw.origin.key if raw.origin else "enable_bucket"
            yield self.finding(cfg, origin=raw.origin, option=self.option, value=raw.value, key_name=key_name)
