"""LC220 optimizer-arg-not-accepted: optimizer_args key that the optimizer's constructor does not accept (TypeError)."""

from __future__ import annotations

from collections.abc import Iterable

from lora_compat.config.model import CanonicalConfig
from lora_compat.lint.facts.optimizers import effective
from lora_compat.lint.finding import Finding
from lora_compat.lint.registry import Rule, register


@register
class OptimizerArgNotAccepted(Rule):
    """An ``optimizer_args`` key that the chosen optimizer does not take.

    sd-scripts passes every ``optimizer_args`` item as a keyword argument to the optimizer's constructor; an unknown
    keyword stops training with ``TypeError: unexpected keyword argument``. Classic cases: ``betas`` for Adafactor (it
    takes ``beta1``; Derrian's scripts drop ``betas`` for Adafactor for this reason), ``decouple`` for plain AdamW (a
    DAdaptation/Prodigy argument).

    **Anti-pattern**

    ```toml
    optimizer_type = "AdamW"
    optimizer_args = ["decouple=True"]
    ```

    **Best practice**

    ```toml
    optimizer_type = "Prodigy"
    optimizer_args = ["decouple=True", "weight_decay=0.01"]
    ```
    """

    code, name, severity = "LC220", "optimizers.optimizer_arg_not_accepted", "error"
    groups = ("optimizers",)
    summary = "optimizer_args key that the optimizer's constructor does not accept (TypeError)."
    message = "optimizer_args {key!r} is not an argument of {opt}: sd-scripts stops with TypeError"
    reference = ("sd-scripts library/train_util.py add_optimizer_arguments, get_optimizer; "
                 "LoRA_Easy_Training_Scripts ArgsList.py")

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        # the constructor keywords come from the one optimizer catalogue (lora_compat.semantics.OPTIMIZERS);
        # optimizers it does not pin are not checked
        opt = effective(cfg)
        shown = cfg.get("optimizer_type") or opt.name
        for k in opt.unknown_keywords:
            yield self.finding(cfg, option="optimizer_args", key=k, opt=shown)
