"""LC222 max-steps-and-epochs: max_train_steps and max_train_epochs both set: epochs win."""

from __future__ import annotations

from collections.abc import Iterable

from lora_compat.config.model import CanonicalConfig
from lora_compat.lint.finding import Finding
from lora_compat.lint.query import as_number, is_explicit
from lora_compat.lint.registry import Rule, register


@register
class MaxStepsAndEpochs(Rule):
    """``max_train_epochs`` overrides ``max_train_steps``.

    When both are set, sd-scripts recomputes ``max_train_steps`` from the epochs — the step count in the file is dead.
    With a kohya_ss GUI file both often appear because the GUI default ``max_train_steps`` is 1600.

    **Anti-pattern**

    ```toml
    max_train_steps = 2000
    max_train_epochs = 10
    ```

    **Best practice**

    ```toml
    max_train_epochs = 10
    ```
    """

    code, name, severity = "LC222", "training.max_steps_and_epochs", "warning"
    groups = ("training",)
    summary = "max_train_steps and max_train_epochs both set: epochs win."
    message = "max_train_steps = {steps} is overridden by max_train_epochs = {epochs}"
    reference = ("sd-scripts train_network.py NetworkTrainer.train, library/train_util.py add_training_arguments; "
                 "kohya_ss kohya_gui/lora_gui.py")

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        epochs = as_number(cfg.get("max_train_epochs"))
        steps = cfg.get("max_train_steps")
        if epochs and epochs > 0 and steps is not None and is_explicit(cfg, "max_train_steps"):
            yield self.finding(cfg, option="max_train_steps", steps=steps, epochs=int(epochs))
