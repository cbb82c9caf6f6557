"""Which scheduler sd-scripts builds, and scheduler names that are not sd-scripts'."""

from __future__ import annotations

from lora_compat.config.model import CanonicalConfig
from lora_compat.lint.facts.optimizers import adafactor_relative_step, is_schedule_free

# Scheduler names from other frameworks (PyTorch / Keras / seed 003) that sd-scripts' lr_scheduler does not know.
FOREIGN_SCHEDULERS = frozenset({
    "step", "steplr", "plateau", "reducelronplateau", "exponential", "exponentiallr", "multistep", "multisteplr",
    "cosine_annealing", "cosineannealinglr", "cosineannealingwarmrestarts", "onecycle", "onecyclelr", "cyclic",
})


def lr_scheduler_is_used(cfg: CanonicalConfig) -> bool:
    """Whether sd-scripts builds the scheduler named by ``lr_scheduler`` at all. library/train_util.py
    ``get_scheduler_fix`` returns first a dummy scheduler for a schedule-free optimizer, then the class named by
    ``lr_scheduler_type``; and ``get_optimizer`` replaces ``lr_scheduler`` with ``adafactor:<lr>`` for Adafactor
    with ``relative_step``: in these cases the name written is never looked at (nor validated)."""
    return not is_schedule_free(cfg) and not cfg.get("lr_scheduler_type") and not adafactor_relative_step(cfg)
