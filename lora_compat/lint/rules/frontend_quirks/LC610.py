"""LC610 kohya-use-wandb-dropped: kohya_ss use_wandb: true is silently dropped by the GUI loader."""

from __future__ import annotations

from collections.abc import Iterable

from lora_compat.config.model import CanonicalConfig
from lora_compat.lint.finding import Finding
from lora_compat.lint.query import raw_value
from lora_compat.lint.registry import register
from lora_compat.lint.rule_kinds import QuirkRule


@register
class KohyaUseWandbDropped(QuirkRule):
    """kohya_ss drops ``use_wandb: true``: wandb logging silently stays off.

    Since 2024-04-19 the GUI loader migrates ``use_wandb`` to ``log_with = "wandb"`` only when the value is the *string*
    ``"True"``; real files store a JSON boolean.

    **Anti-pattern**

    ```json
    {"use_wandb": true}
    ```

    **Best practice**

    ```json
    {"log_with": "wandb"}
    ```
    """

    code, name, severity = "LC610", "frontend_quirks.kohya_use_wandb_dropped", "warning"
    groups = ("frontend_quirks", "outputs")
    summary = "kohya_ss use_wandb: true is silently dropped by the GUI loader."
    message = "{detail}"
    reference = "kohya_ss kohya_gui/common_gui.py"
    note_codes = ("kohya-gui-use-wandb-dropped",)

    def detect(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        r = raw_value(cfg, None, keys=("use_wandb",))
        if r and r.value is True and not cfg.get("log_with"):
            yield self.finding(cfg, origin=r.origin,
                               detail="use_wandb: true is dropped by the kohya_ss loader (only the string "
                                      "\"True\" is migrated): no wandb logging")
