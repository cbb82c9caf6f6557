"""LC606 derrian-a1-text-only-ignored: Derrian A1: text_only is ignored when unet_only is on."""

from __future__ import annotations

from collections.abc import Iterable

from lora_compat.config.model import CanonicalConfig
from lora_compat.lint.finding import Finding
from lora_compat.lint.query import raw_value, truthy
from lora_compat.lint.registry import register
from lora_compat.lint.rule_kinds import QuirkRule


@register
class DerrianA1TextOnlyIgnored(QuirkRule):
    """Derrian A1 ignores ``text_only`` when ``unet_only`` is also on.

    The A1 command builder emits ``--network_train_unet_only`` and skips ``text_only`` (A2 passes both, which leaves
    nothing to train).

    **Anti-pattern**

    ```json
    {"unet_only": true, "text_only": true}
    ```

    **Best practice**

    ```json
    {"unet_only": true, "text_only": false}
    ```
    """

    code, name, severity = "LC606", "frontend_quirks.derrian_a1_text_only_ignored", "warning"
    groups = ("frontend_quirks", "training")
    summary = "Derrian A1: text_only is ignored when unet_only is on."
    message = "{detail}"
    reference = "LoRA_Easy_Training_Scripts ArgsList.py; LoRA_Easy_Training_Scripts main.py"
    note_codes = ("derrian-a1-unet-wins",)

    def detect(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        if cfg.era != "A1":
            return
        t = raw_value(cfg, None, keys=("text_only",))
        u = raw_value(cfg, None, keys=("unet_only",))
        if t and u and truthy(t.value) and truthy(u.value):
            yield self.finding(cfg, origin=t.origin,
                               detail="text_only is ignored by Derrian A1 because unet_only is also on "
                                      "(UNet-only training ran)")
