"""LC227 fp8-without-mixed-precision: fp8_base without mixed precision: asserts."""

from __future__ import annotations

from collections.abc import Iterable

from lora_compat.config.model import CanonicalConfig
from lora_compat.lint.finding import Finding
from lora_compat.lint.query import effective, truthy
from lora_compat.lint.registry import Rule, register


@register
class Fp8WithoutMixedPrecision(Rule):
    """``fp8_base`` / ``fp8_base_unet`` need a mixed precision other than ``no``.

    train_network.py asserts it.

    **Anti-pattern**

    ```toml
    fp8_base = true
    mixed_precision = "no"
    ```

    **Best practice**

    ```toml
    fp8_base = true
    mixed_precision = "bf16"
    ```
    """

    code, name, severity = "LC227", "precision.fp8_without_mixed_precision", "error"
    groups = ("precision",)
    summary = "fp8_base without mixed precision: asserts."
    message = "{opt} requires mixed_precision fp16 or bf16 (it is {have!r})"
    reference = "sd-scripts library/train_util.py add_training_arguments, train_network.py NetworkTrainer.train"

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        have = effective(cfg, "mixed_precision") or "no"
        for opt in ("fp8_base", "fp8_base_unet"):
            if truthy(cfg.get(opt)) and have == "no":
                yield self.finding(cfg, option=opt, opt=opt, have=have)
