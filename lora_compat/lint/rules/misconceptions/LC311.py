"""LC311 warmup-ratio-above-one: warmup_lr_ratio/warmup_ratio > 1: it is a fraction of total steps."""

from __future__ import annotations

from collections.abc import Iterable

from lora_compat.config.model import CanonicalConfig
from lora_compat.lint.finding import Finding
from lora_compat.lint.query import as_number, raw_value
from lora_compat.lint.registry import Rule, register


@register
class WarmupRatioAboveOne(Rule):
    """Derrian's ``warmup_lr_ratio`` / ``warmup_ratio`` is a fraction of the run (0–1).

    A widely copied option table says: "warmup_lr_ratio — The ratio of the maximum learning rate to the initial learning
    rate". Wrong: the scripts compute ``lr_warmup_steps = int(total_steps × ratio)``. A value like 10 (a percent, or an
    LR ratio) means warmup = 10× the run. Derrian's loader even copies kohya_ss's *percent* ``lr_warmup`` into this
    field unchanged.

    **Anti-pattern**

    ```json
    {"warmup_lr_ratio": 10}
    ```

    **Best practice**

    ```json
    {"warmup_lr_ratio": 0.1}
    ```
    """

    code, name, severity = "LC311", "misconceptions.warmup_ratio_above_one", "error"
    groups = ("misconceptions", "schedulers")
    summary = "warmup_lr_ratio/warmup_ratio > 1: it is a fraction of total steps."
    message = "{key} = {value!r} is a fraction of all steps: this warmup lasts {value}× the whole run"
    reference = ("LoRA_Easy_Training_Scripts main.py; LoRA_Easy_Training_Scripts ArgsList.py; "
                 "LoRA_Easy_Training_scripts_Backend utils/validation.py")
    note_codes = ("derrian-kohya-warmup-percent",)

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        raw = raw_value(cfg, None, keys=("warmup_lr_ratio", "warmup_ratio"))
        if raw is None and cfg.dialect == "derrian-argstore":
            raw = raw_value(cfg, None, keys=("lr_warmup",))   # kohya percent loaded through Derrian's alias
        n = as_number(raw.value) if raw else None
        if raw is not None and n is not None and n > 1:
            key = raw.origin.key if raw.origin else "warmup_ratio"
            yield self.finding(cfg, origin=raw.origin, option="lr_warmup_steps", key=key, value=raw.value)
