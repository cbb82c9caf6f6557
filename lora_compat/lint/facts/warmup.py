"""The learning-rate warmup of a config as sd-scripts reads it: an int is steps, a float a ratio of the run."""

from __future__ import annotations

import math

from lora_compat.config.model import CanonicalConfig
from lora_compat.lint.query import as_number, effective

# Reader notes of a front-end warmup (a percent or ratio) that needs the images to become steps.
UNRESOLVED_WARMUP_NOTES = frozenset({"derrian-warmup-unresolved", "derrian-toml-warmup-unresolved"})


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


def warmup_in_steps(cfg: CanonicalConfig) -> int | None:
    """The warmup in scheduler steps as ``get_scheduler_fix`` computes it (:func:`lora_compat.semantics.
    warmup_steps` for one process); None when a ratio meets a step count known only from the dataset."""
    from lora_compat.semantics.schedules import warmup_steps

    w, is_ratio = warmup_value(cfg)
    if w is None or not is_ratio:
        if isinstance(w, int):
            return w   # an int of any size (math.isfinite would overflow converting it to float)
        return int(w) if w is not None and math.isfinite(w) else 0
    steps = None if cfg.get("max_train_epochs") else as_number(effective(cfg, "max_train_steps"))
    return warmup_steps(float(w), int(steps)) if steps else None


def warmup_unresolved(cfg: CanonicalConfig) -> bool:
    """The front-end's warmup is a percent/ratio of a step count the reader could not compute here (the image
    folders are absent): a warmup is there, its length is unknown."""
    return any(n.code in UNRESOLVED_WARMUP_NOTES for n in cfg.notes)
