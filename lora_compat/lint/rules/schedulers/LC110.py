"""LC110 unknown-lr-scheduler: lr_scheduler names no scheduler sd-scripts can build."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

from lora_compat.config.model import CanonicalConfig
from lora_compat.lint.facts.schedulers import FOREIGN_SCHEDULERS, lr_scheduler_is_used
from lora_compat.lint.finding import Finding
from lora_compat.lint.registry import Rule, register

# Accepted by transformers' SchedulerType but crash inside sd-scripts' catch-all call.
CRASHING_SCHEDULERS = frozenset({"reduce_lr_on_plateau", "cosine_warmup_with_min_lr"})


@register
class UnknownLrScheduler(Rule):
    """``lr_scheduler`` is not a scheduler sd-scripts can build.

    sd-scripts has no argparse choices for ``lr_scheduler``: the name goes to transformers' ``SchedulerType`` (unknown
    names raise ``ValueError``), ``piecewise_constant`` to diffusers, ``adafactor`` to the Adafactor schedule.
    ``reduce_lr_on_plateau`` and ``cosine_warmup_with_min_lr`` pass the name check but crash with a ``TypeError`` in
    sd-scripts' catch-all call.

    **Anti-pattern**

    ```toml
    lr_scheduler = "cosine_restart"   # a typo: "cosine_with_restarts"
    ```

    **Best practice**

    ```toml
    lr_scheduler = "cosine_with_restarts"
    ```
    """

    code, name, severity = "LC110", "schedulers.unknown_lr_scheduler", "error"
    groups = ("schedulers",)
    summary = "lr_scheduler names no scheduler sd-scripts can build."
    message = "lr_scheduler = {value!r}: {reason}"
    reference = "sd-scripts library/train_util.py add_optimizer_arguments, get_scheduler_fix"

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        v = cfg.get("lr_scheduler")
        if not isinstance(v, str) or not v or not lr_scheduler_is_used(cfg):
            return   # with lr_scheduler_type or a schedule-free optimizer sd-scripts never validates the name
        from lora_compat.semantics import SCHEDULER_NAMES  # the one list of names sd-scripts can build

        name = v.split(":", 1)[0]
        if name in SCHEDULER_NAMES or v.lower() in FOREIGN_SCHEDULERS:
            return   # foreign (PyTorch/Keras) names are the LC314 misconception
        if name in CRASHING_SCHEDULERS:
            reason = "accepted by transformers but sd-scripts' scheduler call fails with TypeError"
        else:
            close = difflib.get_close_matches(name, sorted(SCHEDULER_NAMES), n=1, cutoff=0.6)
            reason = "unknown scheduler (ValueError at start)" + (f"; did you mean {close[0]!r}?" if close else "")
        yield self.finding(cfg, option="lr_scheduler", value=v, reason=reason)
