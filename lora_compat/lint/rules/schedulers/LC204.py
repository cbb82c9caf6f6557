"""LC204 warmup-exceeds-training: The warmup lasts as long as the whole run."""

from __future__ import annotations

from collections.abc import Iterable

from lora_compat.config.model import CanonicalConfig
from lora_compat.lint.facts.warmup import warmup_value
from lora_compat.lint.finding import Finding
from lora_compat.lint.query import as_number, effective
from lora_compat.lint.registry import Rule, register


@register
class WarmupExceedsTraining(Rule):
    """The warmup is as long as (or longer than) the whole run.

    With warmup steps ``W >= max_train_steps`` the learning rate is still ramping up when training stops: the run never
    reaches the configured learning rate. Typical causes: a percent written where steps were expected, or a step count
    copied from a longer recipe.

    **Anti-pattern**

    ```toml
    max_train_steps = 400
    lr_scheduler = "cosine"
    lr_warmup_steps = 500
    ```

    **Best practice**

    ```toml
    max_train_steps = 400
    lr_scheduler = "cosine"
    lr_warmup_steps = 40      # or 0.1 (10 %)
    ```
    """

    code, name, severity = "LC204", "schedulers.warmup_exceeds_training", "warning"
    groups = ("schedulers",)
    summary = "The warmup lasts as long as the whole run."
    message = "warmup of {w} steps >= max_train_steps {n}: the learning rate never reaches its target"
    reference = "sd-scripts library/train_util.py get_scheduler_fix"

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        w, is_ratio = warmup_value(cfg)
        if w is None or is_ratio or w <= 0 or cfg.get("max_train_epochs"):
            return
        n = as_number(effective(cfg, "max_train_steps"))
        if n and w >= n:
            yield self.finding(cfg, option="lr_warmup_steps", w=int(w), n=int(n))
