"""sd-scripts' tracker rules (``prepare_accelerator`` / ``init_trackers`` in ``library/train_util.py``): which
trackers a run starts, which packages they need, and where the logs go. Pure functions, no tracker imported; the
engine's setup is :mod:`lora_compat.train.trackers`, the plan's refusal of a missing package uses
:func:`missing_tracker_packages`."""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path

#: tracker name (as accelerate calls it) -> the Python package it needs.
TRACKER_PACKAGES = {"tensorboard": "tensorboard", "wandb": "wandb"}

DEFAULT_TRACKER_NAME = "network_train"


def effective_log_with(log_with: str | None, logging_dir: str | None) -> str | None:
    """sd-scripts' tracker choice: ``log_with`` as given, else ``tensorboard`` when ``logging_dir`` is set."""
    if log_with is None:
        return "tensorboard" if logging_dir else None
    return log_with


def trackers_used(log_with: str | None) -> list[str]:
    """The trackers a ``log_with`` value starts (``all``: TensorBoard and wandb, the ones lora-compat sets up)."""
    if log_with is None:
        return []
    return list(TRACKER_PACKAGES) if log_with == "all" else [log_with]


def missing_tracker_packages(log_with: str | None, logging_dir: str | None) -> list[str]:
    """The packages the run's trackers need that are not installed here (checked without importing them).

    With ``all`` only wandb is required, as in sd-scripts (accelerate starts whichever others are installed)."""
    chosen = effective_log_with(log_with, logging_dir)
    needed = ["wandb"] if chosen == "all" else trackers_used(chosen)
    return [TRACKER_PACKAGES[t] for t in needed
            if t in TRACKER_PACKAGES and importlib.util.find_spec(TRACKER_PACKAGES[t]) is None]


def run_log_dir(logging_dir: str, log_prefix: str | None, now: float | None = None) -> Path:
    """``<logging_dir>/<log_prefix><YYYYmmddHHMMSS>`` (sd-scripts' ``prepare_accelerator``, local time)."""
    stamp = time.strftime("%Y%m%d%H%M%S", time.localtime(time.time() if now is None else now))
    return Path(logging_dir) / f"{log_prefix or ''}{stamp}"

