"""LC607 derrian-a1-grad-acc-dropped: Derrian A1: gradient_acc_steps dropped without gradient_checkpointing."""

from __future__ import annotations

from collections.abc import Iterable

from lora_compat.config.model import CanonicalConfig
from lora_compat.lint.finding import Finding
from lora_compat.lint.query import as_number, raw_value, truthy
from lora_compat.lint.registry import register
from lora_compat.lint.rule_kinds import QuirkRule


@register
class DerrianA1GradAccDropped(QuirkRule):
    """Derrian A1 passes ``gradient_acc_steps`` only together with ``gradient_checkpointing``.

    Without checkpointing the A1 builder silently drops gradient accumulation: the run used an effective batch size of
    ``batch_size``, not ``batch_size × gradient_acc_steps``.

    **Anti-pattern**

    ```json
    {"gradient_acc_steps": 4, "gradient_checkpointing": false}
    ```

    **Best practice**

    ```json
    {"gradient_acc_steps": 4, "gradient_checkpointing": true}
    ```
    """

    code, name, severity = "LC607", "frontend_quirks.derrian_a1_grad_acc_dropped", "warning"
    groups = ("frontend_quirks", "training")
    summary = "Derrian A1: gradient_acc_steps dropped without gradient_checkpointing."
    message = "{detail}"
    reference = "LoRA_Easy_Training_Scripts ArgsList.py; LoRA_Easy_Training_Scripts main.py"
    note_codes = ("derrian-a1-drops-gradient-acc",)

    def detect(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        if cfg.era != "A1":
            return
        g = raw_value(cfg, None, keys=("gradient_acc_steps",))
        n = as_number(g.value) if g else None
        if g and n and n > 1 and not truthy(cfg.get("gradient_checkpointing")):
            yield self.finding(cfg, origin=g.origin,
                               detail=f"gradient_acc_steps = {g.value} was dropped by Derrian A1 (only passed "
                                      "with gradient_checkpointing)")
