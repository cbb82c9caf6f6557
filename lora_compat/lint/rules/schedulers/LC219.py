"""LC219 scheduler-needs-warmup."""

from __future__ import annotations

from collections.abc import Iterable

from lora_compat.config.model import CanonicalConfig
from lora_compat.lint.facts.schedulers import lr_scheduler_is_used
from lora_compat.lint.facts.warmup import has_warmup, warmup_unresolved
from lora_compat.lint.finding import Finding
from lora_compat.lint.registry import Rule, register


@register
class SchedulerNeedsWarmup(Rule):
    """A scheduler whose shape depends on the warmup, configured without one.

    ``constant_with_warmup`` without warmup is plain ``constant``: the ramp ``t / max(1, W)`` needs ``W > 0``.
    ``inverse_sqrt`` decays as ``1/sqrt((t + τ − W)/τ)`` with ``τ = lr_scheduler_timescale``, else ``W``, else 10000 —
    without warmup and timescale the decay is governed by an arbitrary 10000 steps. Usually a lost percent/ratio
    conversion.

    **Anti-pattern**

    ```toml
    lr_scheduler = "constant_with_warmup"
    lr_warmup_steps = 0
    ```

    **Best practice**

    ```toml
    lr_scheduler = "constant_with_warmup"
    lr_warmup_steps = 0.05
    ```
    """

    code, name, severity = "LC219", "schedulers.scheduler_needs_warmup", "info"
    groups = ("schedulers",)
    summary = "constant_with_warmup / inverse_sqrt without warmup (plain constant / a 10000-step timescale)."
    message = "lr_scheduler {sched!r} with no warmup steps {what}"
    reference = "sd-scripts library/train_util.py get_scheduler_fix"

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        sched = cfg.get("lr_scheduler")
        if has_warmup(cfg) or warmup_unresolved(cfg) or not lr_scheduler_is_used(cfg):
            return   # a front-end percent/ratio warmup whose step count needs the images is still a warmup
        if sched == "constant_with_warmup":
            yield self.finding(cfg, option="lr_scheduler", sched=sched, what="is plain 'constant'")
        elif sched == "inverse_sqrt" and cfg.get("lr_scheduler_timescale") is None:
            yield self.finding(cfg, option="lr_scheduler", sched=sched,
                               what="and no lr_scheduler_timescale decays on a fixed 10000-step timescale")
