"""LC238 cosine-min-lr-needs-ratio: cosine_with_min_lr without lr_scheduler_min_lr_ratio: ValueError."""

from __future__ import annotations

from collections.abc import Iterable

from lora_compat.config.model import CanonicalConfig
from lora_compat.lint.facts.schedulers import lr_scheduler_is_used
from lora_compat.lint.finding import Finding
from lora_compat.lint.query import kv_items
from lora_compat.lint.registry import Rule, register


@register
class CosineMinLrNeedsRatio(Rule):
    """``cosine_with_min_lr`` needs ``lr_scheduler_min_lr_ratio`` (or ``min_lr`` in ``lr_scheduler_args``).

    transformers raises ``ValueError`` without it.

    **Anti-pattern**

    ```toml
    lr_scheduler = "cosine_with_min_lr"
    ```

    **Best practice**

    ```toml
    lr_scheduler = "cosine_with_min_lr"
    lr_scheduler_min_lr_ratio = 0.1
    ```
    """

    code, name, severity = "LC238", "schedulers.cosine_min_lr_needs_ratio", "error"
    groups = ("schedulers",)
    summary = "cosine_with_min_lr without lr_scheduler_min_lr_ratio: ValueError."
    message = "lr_scheduler 'cosine_with_min_lr' needs lr_scheduler_min_lr_ratio (transformers raises ValueError)"
    reference = "sd-scripts library/train_util.py add_optimizer_arguments, get_scheduler_fix"

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        if cfg.get("lr_scheduler") != "cosine_with_min_lr" or not lr_scheduler_is_used(cfg):
            return
        if cfg.get("lr_scheduler_min_lr_ratio") is not None:
            return
        if any(k in ("min_lr", "min_lr_rate") for k, _ in kv_items(cfg.get("lr_scheduler_args"))):
            return
        yield self.finding(cfg, option="lr_scheduler")
