"""LC105 warmup-float-steps: A float warmup/decay value >= 1.0 is a ratio of the whole run, not a step count."""

from __future__ import annotations

from collections.abc import Iterable

from lora_compat.config.model import CanonicalConfig
from lora_compat.lint.finding import Finding
from lora_compat.lint.registry import Rule, register


@register
class WarmupFloatSteps(Rule):
    """A float ``lr_warmup_steps`` (or ``lr_decay_steps``) of 1.0 or more.

    sd-scripts decides the unit by the Python type: an int is a number of steps, a float is a *ratio* of the total
    steps, ``W = int(lr_warmup_steps × max_train_steps × num_processes)``. ``100.0`` in a TOML therefore means "warm up
    for 100 × the whole run": the learning rate never leaves the warmup ramp. On the command line ``1.0`` is even an
    argparse error.

    **Anti-pattern**

    ```toml
    lr_warmup_steps = 100.0
    ```

    **Best practice**

    ```toml
    lr_warmup_steps = 100     # steps
    # or
    lr_warmup_steps = 0.05    # 5 % of the run
    ```
    """

    code, name, severity = "LC105", "schedulers.warmup_float_steps", "error"
    groups = ("schedulers",)
    summary = "A float warmup/decay value >= 1.0 is a ratio of the whole run, not a step count."
    message = "{option} = {value!r} is a float, which sd-scripts reads as a ratio: {pct:.0f}% of all steps"
    reference = "sd-scripts library/train_util.py add_optimizer_arguments, get_scheduler_fix"

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        for option in ("lr_warmup_steps", "lr_decay_steps"):
            v = cfg.get(option)
            if isinstance(v, float) and v >= 1.0:
                yield self.finding(cfg, option=option, value=v, pct=v * 100)
