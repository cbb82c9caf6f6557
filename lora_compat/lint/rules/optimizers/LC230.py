"""LC230 fused-backward-pass-conflict."""

from __future__ import annotations

from collections.abc import Iterable

from lora_compat.config.model import CanonicalConfig
from lora_compat.lint.facts.optimizers import optimizer_name
from lora_compat.lint.finding import Finding
from lora_compat.lint.query import as_number, truthy
from lora_compat.lint.registry import Rule, register


@register
class FusedBackwardPassConflict(Rule):
    """``fused_backward_pass`` needs Adafactor and ``gradient_accumulation_steps = 1`` — and does nothing for LoRA.

    sd-scripts asserts both conditions; in train_network.py the option has no other effect.

    **Anti-pattern**

    ```toml
    fused_backward_pass = true
    optimizer_type = "AdamW8bit"
    ```

    **Best practice**

    ```toml
    # leave fused_backward_pass out for LoRA training
    ```
    """

    code, name, severity = "LC230", "optimizers.fused_backward_pass_conflict", "error"
    groups = ("optimizers",)
    summary = "fused_backward_pass with a non-Adafactor optimizer or gradient accumulation: asserts."
    message = "fused_backward_pass {why}"
    reference = "sd-scripts library/train_util.py add_optimizer_arguments, get_optimizer"

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        if not truthy(cfg.get("fused_backward_pass")):
            return
        if optimizer_name(cfg) != "adafactor":
            yield self.finding(cfg, option="fused_backward_pass",
                               why=f"requires optimizer Adafactor (not {cfg.get('optimizer_type') or 'AdamW'}): "
                                   "AssertionError")
        elif (as_number(cfg.get("gradient_accumulation_steps")) or 1) != 1:
            yield self.finding(cfg, option="fused_backward_pass",
                               why="requires gradient_accumulation_steps = 1: AssertionError")
        else:
            yield self.finding(cfg, option="fused_backward_pass", severity="info",
                               why="has no effect in LoRA training (train_network.py only runs its asserts)")
