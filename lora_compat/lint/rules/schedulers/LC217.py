"""LC217 scheduler-ignores-power: lr_scheduler_power with a scheduler other than polynomial."""

from __future__ import annotations

from collections.abc import Iterable

from lora_compat.config.model import CanonicalConfig
from lora_compat.lint.finding import Finding
from lora_compat.lint.query import as_number, effective, is_explicit
from lora_compat.lint.registry import Rule, register


@register
class SchedulerIgnoresPower(Rule):
    """``lr_scheduler_power`` is used only by the ``polynomial`` scheduler.

    Every other scheduler ignores it. A widely copied option table described Derrian's ``scheduler_power`` as a general
    "the learning rate changes more slowly" knob.

    **Anti-pattern**

    ```toml
    lr_scheduler = "cosine"
    lr_scheduler_power = 2
    ```

    **Best practice**

    ```toml
    lr_scheduler = "polynomial"
    lr_scheduler_power = 2
    ```
    """

    code, name, severity = "LC217", "schedulers.scheduler_ignores_power", "warning"
    groups = ("schedulers",)
    summary = "lr_scheduler_power with a scheduler other than polynomial."
    message = "lr_scheduler_power = {p:g} is ignored by lr_scheduler {sched!r} (polynomial only)"
    reference = "sd-scripts library/train_util.py add_optimizer_arguments, get_scheduler_fix"

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        p = as_number(cfg.get("lr_scheduler_power"))
        sched = effective(cfg, "lr_scheduler") or "constant"
        if (p is not None and p != 1 and is_explicit(cfg, "lr_scheduler_power") and not cfg.get("lr_scheduler_type")
                and sched != "polynomial"):
            yield self.finding(cfg, option="lr_scheduler_power", p=p, sched=sched)
