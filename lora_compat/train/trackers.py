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
    config: dict[str, Any] | None = None   # log_config: the run's options (the plan sanitized them)

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
                         project=outputs.log_tracker_name or DEFAULT_TRACKER_NAME,
                         config=getattr(outputs, "tracker_config", None))
    tracker_file = getattr(outputs, "log_tracker_config", None)
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
    if tracker_file:
        # sd-scripts: the file's tables replace the init arguments (wandb_run_name is then not used)
        protected = setup.init_kwargs.get("wandb", {}).get("settings")
        setup.init_kwargs = read_tracker_config(str(tracker_file))
        if protected is not None and isinstance(setup.init_kwargs.get("wandb"), dict):
            setup.init_kwargs["wandb"].setdefault("settings", protected)
    return setup


def read_tracker_config(path: str) -> dict[str, Any]:
    """``log_tracker_config``: a TOML file of ``[<tracker name>]`` tables, each the keyword arguments of that
    tracker's start (``[wandb]`` -> ``wandb.init``); a missing or invalid file is a one-line error."""
    from lora_compat.tomlparse import tomllib

    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc.strerror or exc}", key="log_tracker_config") from None
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"{path}: {exc}", key="log_tracker_config") from None
    bad = next((k for k, v in data.items() if not isinstance(v, dict)), None)
    if bad is not None:
        raise UserError(f"{path}: {bad!r} is not a table of a tracker's arguments (e.g. [wandb])",
                        key="log_tracker_config")
    return data


def log_values(accelerator: Any, logs: dict[str, Any], *, step_value: int, global_step: int, epoch: int) -> None:
    """sd-scripts' ``accelerator_logging``: TensorBoard (and any other tracker) gets ``logs`` at ``step_value`` (the
    global step for step logs, the epoch for epoch logs); wandb gets them without a step, with ``global_step`` and
    ``epoch`` added (wandb drops a step lower than one already logged)."""
    for tracker in accelerator.trackers:
        if tracker.name == "wandb":
            tracker.log({**logs, "global_step": global_step, "epoch": epoch})
        else:
            tracker.log(logs, step=step_value)


def step_logs(loss: float, average: float, group_names: list[str], lrs: list[float],
              d_values: list[float | None] | None = None, norms: tuple[Any, ...] | None = None) -> dict[str, Any]:
    """The values sd-scripts logs after every optimizer step (``generate_step_logs``): ``loss/current``,
    ``loss/average`` (the mean of the last epoch's worth of step losses), ``scale_weight_norms``' report
    (``norms``: keys scaled, mean and maximum key norm) and ``lr/<group description>`` per parameter group
    (``textencoder``, ``unet``, ``unet_block<N>``, `` plus`` for LoRA+), with ``lr/d*lr/<name>`` for D-Adaptation /
    Prodigy (``d_values``: each group's ``d``)."""
    logs: dict[str, Any] = {"loss/current": loss, "loss/average": average}
    if norms:
        logs.update({"max_norm/keys_scaled": norms[0], "norm/avg_key_norm": norms[1],
                     "max_norm/max_key_norm": norms[2]})
    for i, (name, lr) in enumerate(zip(group_names, lrs, strict=True)):
        logs[f"lr/{name}"] = float(lr)
        d = d_values[i] if d_values is not None else None
        if d is not None:
            logs[f"lr/d*lr/{name}"] = float(d) * float(lr)
    return logs


def init_wandb_metrics(accelerator: Any) -> None:
    """sd-scripts' ``init_trackers``: wandb's ``epoch``, ``val_step`` and ``global_step`` are hidden step metrics."""
    if any(t.name == "wandb" for t in accelerator.trackers):
        run = accelerator.get_tracker("wandb", unwrap=True)
        for metric in ("epoch", "val_step", "global_step"):
            run.define_metric(metric, hidden=True)


def sample_image_logger(accelerator: Any) -> Any:
    """A ``log(index, image, prompt, global_step)`` for sample images (sd-scripts: TensorBoard ``add_image`` as
    ``sample_<NN>``, wandb ``wandb.Image`` with the prompt as caption), or None without such trackers."""
    names = {t.name for t in accelerator.trackers}
    if not names & {"tensorboard", "wandb"}:
        return None

    def log(index: int, image: Any, prompt: str, global_step: int) -> None:
        import numpy as np

        if "tensorboard" in names:
            accelerator.get_tracker("tensorboard", unwrap=True).add_image(
                f"sample_{index}", np.asarray(image), global_step, dataformats="HWC")
        if "wandb" in names:
            import wandb

            accelerator.get_tracker("wandb", unwrap=True).log(
                {f"sample_{index}": wandb.Image(image, caption=prompt)}, commit=False)

    return log
