"""LC218 warmup-with-constant-scheduler: Non-zero warmup with constant/adafactor/custom scheduler: ValueError."""

from __future__ import annotations

from collections.abc import Iterable

from lora_compat.config.model import CanonicalConfig
from lora_compat.lint.facts.optimizers import adafactor_relative_step, is_schedule_free
from lora_compat.lint.facts.warmup import has_warmup, warmup_in_steps
from lora_compat.lint.finding import Finding
from lora_compat.lint.query import effective
from lora_compat.lint.registry import Rule, register
from lora_compat.semantics.schedules import warmup_refusal


@register
class WarmupWithConstantScheduler(Rule):
    """Warmup with ``constant``, ``adafactor`` or a custom ``lr_scheduler_type`` stops sd-scripts.

    ``get_scheduler_fix`` raises ``ValueError`` when the warmup resolves to a non-zero step count for these schedulers.
    Use ``constant_with_warmup`` for a warmup followed by a constant learning rate. Adafactor with
    ``relative_step=True`` (its default) *replaces* whatever scheduler you chose with ``adafactor:<lr>``, so a warmup
    fails there too.

    **Anti-pattern**

    ```toml
    lr_scheduler = "constant"
    lr_warmup_steps = 100
    ```

    **Best practice**

    ```toml
    lr_scheduler = "constant_with_warmup"
    lr_warmup_steps = 100
    ```
    """

    code, name, severity = "LC218", "schedulers.warmup_with_constant_scheduler", "error"
    groups = ("schedulers",)
    summary = "Non-zero warmup with constant/adafactor/custom scheduler: ValueError."
    message = ("lr_warmup_steps = {w!r} cannot be used with {sched}: sd-scripts raises ValueError (use "
               "constant_with_warmup)")
    reference = "sd-scripts library/train_util.py get_scheduler_fix"

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        if not has_warmup(cfg):
            return
        steps = warmup_in_steps(cfg)        # a ratio of a dataset-sized run: non-zero, length unknown
        name = effective(cfg, "lr_scheduler") or "constant"
        why = warmup_refusal(name if isinstance(name, str) else "constant", 1 if steps is None else steps,
                             lr_scheduler_type=cfg.get("lr_scheduler_type") or None,
                             relative_step=adafactor_relative_step(cfg), schedule_free=is_schedule_free(cfg))
        if why:
            yield self.finding(cfg, option="lr_warmup_steps", w=cfg.get("lr_warmup_steps"), sched=why)
