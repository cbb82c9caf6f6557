"""LC232 adafactor-relative-step-discards-lr."""

from __future__ import annotations

from collections.abc import Iterable

from lora_compat.config.model import CanonicalConfig
from lora_compat.lint.facts.optimizers import adafactor_relative_step
from lora_compat.lint.finding import Finding
from lora_compat.lint.query import get_str, kv_items
from lora_compat.lint.registry import Rule, register


@register
class AdafactorRelativeStepDiscardsLr(Rule):
    """Adafactor with its default ``relative_step=True`` ignores every learning rate you set.

    sd-scripts then sets ``learning_rate``, ``unet_lr`` and ``text_encoder_lr`` to None and forces ``lr_scheduler =
    "adafactor:<lr>"``. To use your own learning rate pass ``relative_step=False`` (and usually
    ``scale_parameter=False``, ``warmup_init=False``).

    **Anti-pattern**

    ```toml
    optimizer_type = "Adafactor"
    unet_lr = 1e-4
    ```

    **Best practice**

    ```toml
    optimizer_type = "Adafactor"
    optimizer_args = ["relative_step=False", "scale_parameter=False", "warmup_init=False"]
    unet_lr = 1e-4
    ```
    """

    code, name, severity = "LC232", "optimizers.adafactor_relative_step_discards_lr", "warning"
    groups = ("optimizers",)
    summary = "Adafactor with relative_step=True (its default) discards all configured learning rates."
    message = "Adafactor runs with relative_step=True{how}: learning_rate/unet_lr/text_encoder_lr are discarded"
    reference = "sd-scripts library/train_util.py get_optimizer"

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        if not adafactor_relative_step(cfg):
            return
        rel = dict(kv_items(cfg.get("optimizer_args"))).get("relative_step")
        how = " (its default)" if rel is None else ""
        sched = get_str(cfg, "lr_scheduler") or ""
        # a file that also picks the adafactor schedule asked for exactly this: informational only
        yield self.finding(cfg, option="optimizer_type", how=how,
                           severity="info" if sched.startswith("adafactor") else None)
