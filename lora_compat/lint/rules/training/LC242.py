"""LC242 initial-step-beyond-training: initial_step >= max_train_steps: asserts."""

from __future__ import annotations

from collections.abc import Iterable

from lora_compat.config.model import CanonicalConfig
from lora_compat.lint.finding import Finding
from lora_compat.lint.query import as_number, effective
from lora_compat.lint.registry import Rule, register


@register
class InitialStepBeyondTraining(Rule):
    """``initial_step`` must be below ``max_train_steps``.

    train_network.py asserts ``max_train_steps > initial_step``.

    **Anti-pattern**

    ```toml
    max_train_steps = 1000
    initial_step = 1000
    ```

    **Best practice**

    ```toml
    max_train_steps = 2000
    initial_step = 1000
    ```
    """

    code, name, severity = "LC242", "training.initial_step_beyond_training", "error"
    groups = ("training",)
    summary = "initial_step >= max_train_steps: asserts."
    message = "initial_step {s} >= max_train_steps {n}: AssertionError"
    reference = "sd-scripts train_network.py setup_parser, NetworkTrainer.train"

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        s = as_number(cfg.get("initial_step"))
        if s is None or cfg.get("max_train_epochs"):
            return
        n = as_number(effective(cfg, "max_train_steps"))
        if n is not None and s >= n:
            yield self.finding(cfg, option="initial_step", s=int(s), n=int(n))
