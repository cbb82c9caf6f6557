"""LC231 legacy-optimizer-flag-conflict."""

from __future__ import annotations

from collections.abc import Iterable

from lora_compat.config.model import CanonicalConfig
from lora_compat.lint.finding import Finding
from lora_compat.lint.query import truthy
from lora_compat.lint.registry import Rule, register


@register
class LegacyOptimizerFlagConflict(Rule):
    """``use_8bit_adam`` / ``use_lion_optimizer`` cannot be combined with each other or with ``optimizer_type``.

    ``get_optimizer`` asserts it.

    **Anti-pattern**

    ```toml
    use_8bit_adam = true
    optimizer_type = "AdamW"
    ```

    **Best practice**

    ```toml
    optimizer_type = "AdamW8bit"
    ```
    """

    code, name, severity = "LC231", "optimizers.legacy_optimizer_flag_conflict", "error"
    groups = ("optimizers",)
    summary = "use_8bit_adam/use_lion_optimizer together with each other or optimizer_type: asserts."
    message = "{a} cannot be combined with {b}: sd-scripts stops with an AssertionError"
    reference = "sd-scripts library/train_util.py add_optimizer_arguments, get_optimizer"

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        adam8 = truthy(cfg.get("use_8bit_adam"))
        lion = truthy(cfg.get("use_lion_optimizer"))
        opt = cfg.get("optimizer_type")
        if adam8 and lion:
            yield self.finding(cfg, option="use_8bit_adam", a="use_8bit_adam", b="use_lion_optimizer")
        for flag, on in (("use_8bit_adam", adam8), ("use_lion_optimizer", lion)):
            if on and opt:
                yield self.finding(cfg, option=flag, a=flag, b=f"optimizer_type {opt!r}")
