"""LC243 adaptive-optimizer-low-lr."""

from __future__ import annotations

from collections.abc import Iterable

from lora_compat.config.model import CanonicalConfig
from lora_compat.lint.facts.optimizers import effective
from lora_compat.lint.finding import Finding
from lora_compat.lint.query import as_number, first_text_encoder_lr, truthy
from lora_compat.lint.registry import Rule, register


@register
class AdaptiveOptimizerLowLr(Rule):
    """D-Adaptation and Prodigy expect a learning rate around 1.0.

    These optimizers estimate the step size themselves and use ``lr`` as a multiplier; sd-scripts warns when ``lr <=
    0.1`` and when several groups have different lrs ("only the first takes effect").

    **Anti-pattern**

    ```toml
    optimizer_type = "Prodigy"
    learning_rate = 1e-4
    ```

    **Best practice**

    ```toml
    optimizer_type = "Prodigy"
    learning_rate = 1.0
    ```
    """

    code, name, severity = "LC243", "optimizers.adaptive_optimizer_low_lr", "warning"
    groups = ("optimizers",)
    summary = "D-Adaptation/Prodigy with a learning rate <= 0.1 or different group learning rates."
    message = "{opt} {what}"
    reference = "sd-scripts library/train_util.py get_optimizer"

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        opt = effective(cfg)
        if opt.spec is None or not opt.spec.adaptive:
            return
        shown = cfg.get("optimizer_type") or opt.name
        lrs = {}
        for name in ("learning_rate", "unet_lr"):
            v = as_number(cfg.get(name))
            if v is not None:
                lrs[name] = v
        te = first_text_encoder_lr(cfg.get("text_encoder_lr"))
        if te is not None and not truthy(cfg.get("network_train_unet_only")):
            lrs["text_encoder_lr"] = te
        low = [n for n, v in lrs.items() if 0 < v <= 0.1]
        if low:
            yield self.finding(cfg, option=low[0], opt=shown,
                               what=f"expects a learning rate around 1.0, but {low[0]} = {lrs[low[0]]:g}")
        group = {v for n, v in lrs.items() if n != "learning_rate" and v > 0}
        if len(group) > 1:
            yield self.finding(cfg, option="text_encoder_lr", opt=shown,
                               what="uses only the first group's learning rate; unet_lr and text_encoder_lr differ")
