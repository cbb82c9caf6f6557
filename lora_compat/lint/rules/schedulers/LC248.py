"""LC248 adafactor-scheduler-misuse."""

from __future__ import annotations

from collections.abc import Iterable

from lora_compat.config.model import CanonicalConfig
from lora_compat.lint.facts.optimizers import adafactor_relative_step, optimizer_name
from lora_compat.lint.facts.schedulers import lr_scheduler_is_used
from lora_compat.lint.finding import Finding
from lora_compat.lint.query import get_str
from lora_compat.lint.registry import Rule, register


@register
class AdafactorSchedulerMisuse(Rule):
    """The ``adafactor`` scheduler only works with the Adafactor optimizer, and by hand it needs ``:lr``.

    A scheduler name starting with ``adafactor`` builds ``AdafactorSchedule(initial_lr = float(text after ":"))`` and
    asserts that the optimizer is Adafactor; written by hand without the ``:<lr>`` suffix (and with
    ``relative_step=False``, so sd-scripts does not rewrite it) the parse fails with ``IndexError``. With
    ``relative_step=True`` sd-scripts writes ``adafactor:<lr>`` itself.

    **Anti-pattern**

    ```toml
    optimizer_type = "AdamW8bit"
    lr_scheduler = "adafactor"
    ```

    **Best practice**

    ```toml
    optimizer_type = "Adafactor"
    optimizer_args = ["relative_step=True", "scale_parameter=True", "warmup_init=False"]
    lr_scheduler = "adafactor"
    ```
    """

    code, name, severity = "LC248", "schedulers.adafactor_scheduler_misuse", "error"
    groups = ("schedulers",)
    summary = "lr_scheduler adafactor with another optimizer (assert) or without ':lr' and relative_step off."
    message = "lr_scheduler {value!r} {why}"
    reference = "sd-scripts library/train_util.py get_optimizer, get_scheduler_fix"

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        sched = get_str(cfg, "lr_scheduler")
        if not sched or not sched.startswith("adafactor") or not lr_scheduler_is_used(cfg):
            return
        if optimizer_name(cfg) != "adafactor":
            yield self.finding(cfg, option="lr_scheduler", value=sched,
                               why=f"requires optimizer Adafactor (not {get_str(cfg, 'optimizer_type') or 'AdamW'}): "
                                   "AssertionError")
        elif ":" not in sched and not adafactor_relative_step(cfg):
            yield self.finding(cfg, option="lr_scheduler", value=sched,
                               why="needs the initial lr as 'adafactor:<lr>' when relative_step is off: IndexError")
