"""LC504 lr-scheduler-type-imports-code: Dotted lr_scheduler_type: sd-scripts would import that module."""

from __future__ import annotations

from collections.abc import Iterable

from lora_compat.config.model import CanonicalConfig
from lora_compat.lint.facts.code_imports import DERRIAN_PREFIX, is_dotted_path
from lora_compat.lint.finding import Finding
from lora_compat.lint.registry import Rule, register


@register
class LrSchedulerTypeImportsCode(Rule):
    """A dotted ``lr_scheduler_type`` makes sd-scripts import a module.

    ``lr_scheduler_type`` is a ``torch.optim.lr_scheduler`` class name or a dotted path that sd-scripts imports and
    builds from ``lr_scheduler_args``. Derrian's UI writes
    ``LoraEasyCustomOptimizer.CosineAnnealingWarmRestarts.CosineAnnealingWarmRestarts`` and friends, classes that exist
    only in Derrian's package; map them to ``cosine_with_restarts`` + ``lr_scheduler_num_cycles``.

    **Anti-pattern**

    ```toml
    lr_scheduler_type = "LoraEasyCustomOptimizer.CosineAnnealingWarmRestarts.CosineAnnealingWarmRestarts"
    ```

    **Best practice**

    ```toml
    lr_scheduler = "cosine_with_restarts"
    lr_scheduler_num_cycles = 4
    ```
    """

    code, name, severity = "LC504", "security.lr_scheduler_type_imports_code", "error"
    groups = ("security",)
    summary = "Dotted lr_scheduler_type: sd-scripts would import that module."
    message = "lr_scheduler_type {value!r} is a dotted path that sd-scripts would import{extra}"
    reference = ("sd-scripts library/train_util.py add_optimizer_arguments, get_scheduler_fix; "
                 "LoRA_Easy_Training_scripts_Backend utils/validation.py")
    note_codes = ("derrian-toml-custom-scheduler",)

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        v = cfg.get("lr_scheduler_type")
        if is_dotted_path(v):
            extra = (" (a Derrian class that vanilla sd-scripts lacks; map it to cosine_with_restarts)"
                     if v.startswith(DERRIAN_PREFIX) else "")
            yield self.finding(cfg, option="lr_scheduler_type", value=v, extra=extra)
