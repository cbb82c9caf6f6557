"""LC239 polynomial-lr-below-end: polynomial scheduler with learning_rate <= lr_end: ValueError."""

from __future__ import annotations

from collections.abc import Iterable

from lora_compat.config.model import CanonicalConfig
from lora_compat.lint.facts.schedulers import lr_scheduler_is_used
from lora_compat.lint.finding import Finding
from lora_compat.lint.query import as_number, effective, kv_items
from lora_compat.lint.registry import Rule, register


@register
class PolynomialLrBelowEnd(Rule):
    """``polynomial`` needs ``learning_rate`` above ``lr_end`` (default 1e-7).

    transformers raises ``ValueError`` when ``learning_rate <= lr_end``. Note the polynomial decays *every* group by the
    same factor relative to ``learning_rate``.

    **Anti-pattern**

    ```toml
    lr_scheduler = "polynomial"
    learning_rate = 1e-8
    ```

    **Best practice**

    ```toml
    lr_scheduler = "polynomial"
    learning_rate = 1e-4
    ```
    """

    code, name, severity = "LC239", "schedulers.polynomial_lr_below_end", "error"
    groups = ("schedulers",)
    summary = "polynomial scheduler with learning_rate <= lr_end: ValueError."
    message = "lr_scheduler 'polynomial' with learning_rate {lr:g} <= lr_end {end:g}: transformers raises ValueError"
    reference = "sd-scripts library/train_util.py get_scheduler_fix"

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        if cfg.get("lr_scheduler") != "polynomial" or not lr_scheduler_is_used(cfg):
            return
        lr = as_number(effective(cfg, "learning_rate"))
        end = 1e-7
        for k, v in kv_items(cfg.get("lr_scheduler_args")):
            n = as_number(v)
            if k == "lr_end" and n is not None:
                end = n
        if lr is not None and lr <= end:
            yield self.finding(cfg, option="learning_rate" if "learning_rate" in cfg.options else "lr_scheduler",
                               lr=lr, end=end)
