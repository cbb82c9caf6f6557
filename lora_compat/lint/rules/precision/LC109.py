"""LC109 precision-value-invalid: save_precision / mixed_precision is not one of sd-scripts' choices."""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar

from lora_compat.config.model import CanonicalConfig
from lora_compat.lint.finding import Finding
from lora_compat.lint.query import raw_value
from lora_compat.lint.registry import Rule, register


@register
class PrecisionValueInvalid(Rule):
    """``save_precision`` must be float/fp16/bf16 and ``mixed_precision`` no/fp16/bf16.

    Both are strings with fixed choices. A ``--config_file`` TOML skips argparse's ``choices`` check, so a typo like
    ``"fp32"`` reaches the code: ``save_precision`` then falls through to "keep the training dtype" and
    ``mixed_precision`` is refused by accelerate.

    **Anti-pattern**

    ```toml
    mixed_precision = "fp32"
    save_precision = "half"
    ```

    **Best practice**

    ```toml
    mixed_precision = "bf16"
    save_precision = "fp16"
    ```
    """

    code, name, severity = "LC109", "precision.precision_value_invalid", "error"
    groups = ("precision",)
    summary = "save_precision / mixed_precision is not one of sd-scripts' choices."
    message = "{option} = {value!r} is not one of {choices}"
    reference = "sd-scripts library/train_util.py add_training_arguments, read_config_from_file"

    CHOICES: ClassVar[dict[str, tuple[str, ...]]] = {"save_precision": ("float", "fp16", "bf16"),
                                                      "mixed_precision": ("no", "fp16", "bf16")}

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        for option, choices in self.CHOICES.items():
            v = cfg.get(option)
            raw = raw_value(cfg, option)
            # numbers and booleans as written are misconceptions, reported by LC308/LC309
            if raw is not None and (isinstance(raw.value, (bool, int, float))
                                    or (isinstance(raw.value, str) and raw.value.strip().isdigit())):
                continue
            if isinstance(v, str) and v not in choices:
                yield self.finding(cfg, option=option, value=v, choices=", ".join(choices))
