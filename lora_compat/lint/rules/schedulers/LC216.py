"""LC216 scheduler-ignores-num-cycles: lr_scheduler_num_cycles with a scheduler that ignores it."""

from __future__ import annotations

from collections.abc import Iterable

from lora_compat.config.model import CanonicalConfig
from lora_compat.lint.finding import Finding
from lora_compat.lint.query import as_number, effective, is_explicit
from lora_compat.lint.registry import Rule, register

_CYCLE_SCHEDULERS = ("cosine_with_restarts", "cosine_with_min_lr", "warmup_stable_decay")


@register
class SchedulerIgnoresNumCycles(Rule):
    """``lr_scheduler_num_cycles`` only matters for cosine_with_restarts, cosine_with_min_lr and warmup_stable_decay.

    Plain ``cosine`` fixes its cycles at 0.5 and ignores the option; every other scheduler ignores it too.
    ``cosine_with_min_lr`` and ``warmup_stable_decay`` use it *divided by two*. A widely copied option table described
    Derrian's ``cosine_restarts`` as "the number of times the schedule should restart" for any scheduler.

    **Anti-pattern**

    ```toml
    lr_scheduler = "cosine"
    lr_scheduler_num_cycles = 3
    ```

    **Best practice**

    ```toml
    lr_scheduler = "cosine_with_restarts"
    lr_scheduler_num_cycles = 3
    ```
    """

    code, name, severity = "LC216", "schedulers.scheduler_ignores_num_cycles", "warning"
    groups = ("schedulers",)
    summary = "lr_scheduler_num_cycles with a scheduler that ignores it."
    message = "lr_scheduler_num_cycles = {n:g} is ignored by lr_scheduler {sched!r}"
    reference = "sd-scripts library/train_util.py add_optimizer_arguments, get_scheduler_fix"

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        n = as_number(cfg.get("lr_scheduler_num_cycles"))
        sched = effective(cfg, "lr_scheduler") or "constant"
        if (n is not None and n != 1 and is_explicit(cfg, "lr_scheduler_num_cycles")
                and not cfg.get("lr_scheduler_type") and sched not in _CYCLE_SCHEDULERS):
            yield self.finding(cfg, option="lr_scheduler_num_cycles", n=n, sched=sched)
