"""The learning-rate warmup of a config as sd-scripts reads it: an int is steps, a float a ratio of the run."""

from __future__ import annotations

import math

from lora_compat.config.model import CanonicalConfig
from lora_compat.lint.query import as_number


def warmup_value(cfg: CanonicalConfig) -> tuple[float | int | None, bool]:
    """(warmup value, is_ratio). A Python float is a ratio, an int a step count (sd-scripts library/train_util.py
    ``get_scheduler_fix``: ``int(lr_warmup_steps * num_training_steps)`` for a float)."""
    v = cfg.get("lr_warmup_steps")
    if v is None or isinstance(v, bool):
        return None, False
    if isinstance(v, float):
        return (v, True) if math.isfinite(v) else (None, False)
    if isinstance(v, int):
        return v, False
    return as_number(v), False


def has_warmup(cfg: CanonicalConfig) -> bool:
    """True when the config asks for a non-zero warmup."""
    w, is_ratio = warmup_value(cfg)
    if w is None:
        return False
    # a ratio gives int(ratio x total steps): treat anything that is not ~0 as a real warmup (no int() overflow)
    return abs(w) >= 1e-6 if is_ratio else w != 0
