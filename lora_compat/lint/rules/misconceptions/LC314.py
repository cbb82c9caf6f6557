"""LC314 foreign-scheduler-name: lr_scheduler uses a PyTorch/Keras name (step, plateau ...) that sd-scripts rejects."""

from __future__ import annotations

from collections.abc import Iterable

from lora_compat.config.model import CanonicalConfig
from lora_compat.lint.facts.schedulers import FOREIGN_SCHEDULERS, lr_scheduler_is_used
from lora_compat.lint.finding import Finding
from lora_compat.lint.registry import Rule, register


@register
class ForeignSchedulerName(Rule):
    """``lr_scheduler`` uses a name from another framework ("step", "plateau" …).

    A widely copied option table listed "step", "cosine" and "plateau" as common choices. sd-scripts builds schedulers
    through transformers/diffusers names (``linear``, ``cosine``, ``cosine_with_restarts``, ``polynomial``,
    ``constant``, ``constant_with_warmup``, ``inverse_sqrt``, ``cosine_with_min_lr``, ``warmup_stable_decay``,
    ``piecewise_constant``, ``adafactor``); "step"/"plateau" raise ``ValueError``, and sd-scripts has no validation loss
    to drive a plateau schedule. A PyTorch class goes in ``lr_scheduler_type`` with ``lr_scheduler_args``.

    **Anti-pattern**

    ```json
    {"scheduler": "plateau"}
    ```

    **Best practice**

    ```json
    {"scheduler": "cosine_with_restarts", "cosine_restarts": 3}
    ```
    """

    code, name, severity = "LC314", "misconceptions.foreign_scheduler_name", "error"
    groups = ("misconceptions", "schedulers")
    summary = "lr_scheduler uses a PyTorch/Keras name (step, plateau ...) that sd-scripts rejects."
    message = ("lr_scheduler = {value!r} is not an sd-scripts scheduler (ValueError); use e.g. 'cosine' or "
               "lr_scheduler_type for a torch class")
    reference = "sd-scripts library/train_util.py get_scheduler_fix"

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        v = cfg.get("lr_scheduler")
        if isinstance(v, str) and v.lower() in FOREIGN_SCHEDULERS and lr_scheduler_is_used(cfg):
            yield self.finding(cfg, option="lr_scheduler", value=v)
