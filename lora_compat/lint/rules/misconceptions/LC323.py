"""LC323 max-steps-are-optimizer-steps."""

from __future__ import annotations

from collections.abc import Iterable

from lora_compat.config.model import CanonicalConfig
from lora_compat.lint.finding import Finding
from lora_compat.lint.query import as_number
from lora_compat.lint.registry import Rule, register


@register
class MaxStepsAreOptimizerSteps(Rule):
    """``max_train_steps`` counts *optimizer* steps, not batches.

    A widely copied option table says: "Training will stop once the model has seen max_steps batches". With
    ``gradient_accumulation_steps = N`` every step consumes N batches, so the run sees N × ``max_train_steps`` batches.

    **Anti-pattern**

    ```toml
    max_train_steps = 1000        # "1000 batches"
    gradient_accumulation_steps = 4
    ```

    **Best practice**

    ```toml
    max_train_steps = 250         # 250 optimizer steps = 1000 batches
    gradient_accumulation_steps = 4
    ```
    """

    code, name, severity = "LC323", "misconceptions.max_steps_are_optimizer_steps", "info"
    groups = ("misconceptions", "training")
    summary = "max_train_steps with gradient accumulation: it counts optimizer steps (N batches each)."
    message = ("max_train_steps = {steps} counts optimizer steps: with gradient_accumulation_steps = {acc} that is "
               "{batches} batches")
    reference = "sd-scripts library/train_util.py add_training_arguments, train_network.py NetworkTrainer.train"

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        steps = as_number(cfg.get("max_train_steps"))
        acc = as_number(cfg.get("gradient_accumulation_steps"))
        if steps and acc and acc > 1 and steps * acc < 1e15 and not cfg.get("max_train_epochs"):
            yield self.finding(cfg, option="max_train_steps", steps=int(steps), acc=int(acc),
                               batches=int(steps * acc))
