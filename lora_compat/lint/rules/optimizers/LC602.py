"""LC602 legacy-optimizer-flag: use_8bit_adam/use_lion_optimizer: legacy flags for optimizer_type."""

from __future__ import annotations

from collections.abc import Iterable

from lora_compat.config.model import CanonicalConfig
from lora_compat.lint.finding import Finding
from lora_compat.lint.query import truthy
from lora_compat.lint.registry import Rule, register


@register
class LegacyOptimizerFlag(Rule):
    """``use_8bit_adam`` / ``use_lion_optimizer`` are legacy spellings of ``optimizer_type``.

    They still work but are asserted against ``optimizer_type``; the kohya_ss GUI replaced ``use_8bit_adam`` with
    ``optimizer`` in 2023.

    **Anti-pattern**

    ```toml
    use_8bit_adam = true
    ```

    **Best practice**

    ```toml
    optimizer_type = "AdamW8bit"
    ```
    """

    code, name, severity = "LC602", "optimizers.legacy_optimizer_flag", "info"
    groups = ("optimizers", "frontend_quirks")
    summary = "use_8bit_adam/use_lion_optimizer: legacy flags for optimizer_type."
    message = "{flag} is a legacy flag: write optimizer_type = {name!r}"
    reference = "sd-scripts library/train_util.py add_optimizer_arguments; kohya_ss kohya_gui/lora_gui.py"
    note_codes = ("derrian-optimizer-flag",)

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        if cfg.get("optimizer_type"):
            return   # LC231 reports the conflict
        for flag, name in (("use_8bit_adam", "AdamW8bit"), ("use_lion_optimizer", "Lion")):
            if truthy(cfg.get(flag)):
                yield self.finding(cfg, option=flag, flag=flag, name=name)
