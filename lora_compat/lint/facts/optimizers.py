"""Which optimizer sd-scripts builds for a config: :func:`lora_compat.semantics.effective_optimizer` (the one
place that decides it for lint, plan and the engine) asked with the config's options."""

from __future__ import annotations

from lora_compat.config.model import CanonicalConfig
from lora_compat.lint.query import truthy
from lora_compat.semantics.optimizers import EffectiveOptimizer, effective_optimizer


def effective(cfg: CanonicalConfig) -> EffectiveOptimizer:
    """What sd-scripts' library/train_util.py ``get_optimizer`` builds: name, catalogue entry, parsed kwargs,
    Adafactor's ``relative_step``, ``optimizer_args`` problems, legacy-flag conflicts."""
    return effective_optimizer(cfg.get("optimizer_type"), cfg.get("optimizer_args"),
                               use_8bit_adam=truthy(cfg.get("use_8bit_adam")),
                               use_lion_optimizer=truthy(cfg.get("use_lion_optimizer")))


def optimizer_name(cfg: CanonicalConfig) -> str:
    """The effective optimizer, lower-case (``use_8bit_adam`` -> ``adamw8bit``; default ``adamw``)."""
    return effective(cfg).name.lower()


def adafactor_relative_step(cfg: CanonicalConfig) -> bool:
    """Adafactor with ``relative_step`` on (its default, or forced by ``warmup_init=True``): sd-scripts then
    replaces the scheduler with ``adafactor:<lr>``."""
    return effective(cfg).relative_step


def is_schedule_free(cfg: CanonicalConfig) -> bool:
    """A schedule-free optimizer: sd-scripts' ``get_scheduler_fix`` returns a dummy scheduler before it looks at
    ``lr_scheduler``, ``lr_scheduler_type`` or the warmup (``is_schedulefree_optimizer``: the name ends in
    ``schedulefree``)."""
    return effective(cfg).name.lower().endswith("schedulefree")
