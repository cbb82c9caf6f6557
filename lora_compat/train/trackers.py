"""Experiment trackers (TensorBoard, Weights & Biases) through accelerate, set up as sd-scripts' ``prepare_accelerator``
and ``init_trackers`` (``library/train_util.py``) do.

* the log folder is ``<logging_dir>/<log_prefix><YYYYmmddHHMMSS>`` (local time), one per run;
* ``log_with`` None means TensorBoard when ``logging_dir`` is set, else no tracker; ``tensorboard`` / ``all`` need
  ``logging_dir`` (the plan refuses them without it, as sd-scripts raises);
* ``wandb`` / ``all``: the wandb package must be importable; wandb writes under the log folder (``WANDB_DIR``);
  the run is named ``wandb_run_name``; the project is ``log_tracker_name`` (default ``network_train``);
* ``wandb_api_key`` reaches wandb through this process's ``WANDB_API_KEY`` only: sd-scripts calls
  ``wandb.login(key=...)``, which also writes the key into ``~/.netrc``; here nothing is written, and the key is
  never printed, logged or recorded (wandb's copy of the command line is turned off when a key is given, since
  the key may be on it).

``WANDB_MODE=offline`` (wandb's own switch) keeps a run on this machine.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lora_compat.errors import UserError
from lora_compat.semantics.trackers import (
    DEFAULT_TRACKER_NAME,
    effective_log_with,
    missing_tracker_packages,
    run_log_dir,
    trackers_used,
)


@dataclass
class TrackerSetup:
    """What the Accelerator gets (``log_with``, ``project_dir``) and what ``init_trackers`` gets."""

    log_with: str | None = None
    log_dir: Path | None = None
    project: str = DEFAULT_TRACKER_NAME
    init_kwargs: dict[str, Any] = field(default_factory=dict)

    @property
    def trackers(self) -> list[str]:
        """The trackers this run starts."""
        return trackers_used(self.log_with)


def prepare_trackers(outputs: Any) -> TrackerSetup:
    """The tracker setup of a plan's :class:`~lora_compat.plan.parts.OutputPlan`; a missing package is a one-line
    error here, before any model is loaded. Sets ``WANDB_DIR`` (and ``WANDB_API_KEY`` when the config holds a
    key) for this process, as sd-scripts sets ``WANDB_DIR``."""
    log_with = effective_log_with(outputs.log_with, outputs.logging_dir)
    missing = missing_tracker_packages(outputs.log_with, outputs.logging_dir)
    if missing:
        pkg = missing[0]
        raise UserError(f"log_with {log_with!r} needs the Python package {pkg!r}, which is not installed (pip "
                        f"install {pkg})", key="log_with" if outputs.log_with else "logging_dir")
    if log_with is None:
        return TrackerSetup()
    log_dir = run_log_dir(outputs.logging_dir, outputs.log_prefix) if outputs.logging_dir else None
    setup = TrackerSetup(log_with=log_with, log_dir=log_dir,
                         project=outputs.log_tracker_name or DEFAULT_TRACKER_NAME)
    if "wandb" in setup.trackers:
        wandb_kwargs: dict[str, Any] = {}
        if log_dir is not None:
            log_dir.mkdir(parents=True, exist_ok=True)
            os.environ["WANDB_DIR"] = str(log_dir)
        if outputs.wandb_run_name:
            wandb_kwargs["name"] = outputs.wandb_run_name
        key = getattr(outputs, "wandb_api_key", None)
        if key:
            os.environ["WANDB_API_KEY"] = str(key)
            import wandb

            # wandb records the command line (and the program) in the run's metadata; the key may be on it
            wandb_kwargs["settings"] = wandb.Settings(x_disable_meta=True)
        setup.init_kwargs["wandb"] = wandb_kwargs
    return setup
