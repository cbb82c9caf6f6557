"""LC226 full-precision-mismatch: full_fp16/full_bf16 with a different mixed_precision: asserts."""

from __future__ import annotations

from collections.abc import Iterable

from lora_compat.config.model import CanonicalConfig
from lora_compat.lint.finding import Finding
from lora_compat.lint.query import effective, truthy
from lora_compat.lint.registry import Rule, register


@register
class FullPrecisionMismatch(Rule):
    """``full_fp16`` needs ``mixed_precision = "fp16"``; ``full_bf16`` needs ``"bf16"``.

    train_network.py asserts the match.

    **Anti-pattern**

    ```toml
    full_bf16 = true
    mixed_precision = "fp16"
    ```

    **Best practice**

    ```toml
    full_bf16 = true
    mixed_precision = "bf16"
    ```
    """

    code, name, severity = "LC226", "precision.full_precision_mismatch", "error"
    groups = ("precision",)
    summary = "full_fp16/full_bf16 with a different mixed_precision: asserts."
    message = "{opt} requires mixed_precision = {want!r}, not {have!r}"
    reference = "sd-scripts library/train_util.py add_training_arguments, train_network.py NetworkTrainer.train"

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        have = effective(cfg, "mixed_precision") or "no"
        for opt, want in (("full_fp16", "fp16"), ("full_bf16", "bf16")):
            if truthy(cfg.get(opt)) and have != want:
                yield self.finding(cfg, option=opt, opt=opt, want=want, have=have)
