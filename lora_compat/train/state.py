"""Checkpoint names, train state and Ctrl-C handling (reference §4.12).

File names follow sd-scripts: ``NAME-{epoch:06d}.ext``, ``NAME-step{step:08d}.ext``, ``NAME.ext``; state
folders ``NAME-{epoch:06d}-state``, ``NAME-step{step:08d}-state``, ``NAME-state`` holding accelerate's
``save_state`` output plus ``train_state.json``. As in sd-scripts (its ``save_model_hook``), the state keeps
only what training changes — the adapter tensors, optimizer, scheduler, RNG streams and dataset position — never
the frozen base model weights.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
from pathlib import Path
from typing import Any

TRAIN_STATE = "train_state.json"


def epoch_name(output_name: str | None, epoch: int, ext: str) -> str:
    return f"{output_name or 'epoch'}-{epoch:06d}{ext}"


def step_name(output_name: str | None, step: int, ext: str) -> str:
    return f"{output_name or 'at'}-step{step:08d}{ext}"


def last_name(output_name: str | None, ext: str) -> str:
    return f"{output_name or 'last'}{ext}"


def state_dir_name(model_file_name: str, ext: str) -> str:
    """State folder for a model file name: ``NAME-...-state`` (the model name without extension)."""
    stem = model_file_name[: -len(ext)] if ext and model_file_name.endswith(ext) else model_file_name
    return stem + "-state"


def removable_step(step: int, save_every_n_steps: int, save_last_n_steps: int | None) -> int | None:
    """The step whose save falls out of the ``save_last_n_steps`` window when ``step`` is saved (sd-scripts
    ``get_remove_step_no``), or None."""
    if not save_last_n_steps:
        return None
    no = step - save_last_n_steps - 1
    no -= no % save_every_n_steps
    return no if no > 0 else None


def removable_epoch(epoch: int, save_every_n_epochs: int, save_last_n_epochs: int | None) -> int | None:
    """The epoch whose save is removed when ``epoch`` is saved (keep the last N epoch saves), or None."""
    if not save_last_n_epochs:
        return None
    no = epoch - save_every_n_epochs * save_last_n_epochs
    return no if no > 0 else None


def remove_quietly(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists():
        path.unlink()


def keep_only_trainable_weights(accelerator: Any) -> None:
    """Make ``accelerator.save_state`` write only the trainable (adapter) tensors of each prepared model."""

    def hook(models: list[Any], weights: list[dict[str, Any]], output_dir: str) -> None:
        for i, model in enumerate(models[:len(weights)]):
            trainable = {n for n, p in model.named_parameters() if p.requires_grad}
            weights[i] = {k: v for k, v in weights[i].items() if k in trainable}

    accelerator.register_save_state_pre_hook(hook)


def check_state_folder(accelerator: Any, folder: Path) -> None:
    """Refuse (one line) a ``--resume`` folder that is not a state of this run's network: not a state folder at
    all, adapter tensors missing, or saved with other shapes (a changed rank)."""
    from lora_compat.errors import UserError

    if not folder.is_dir():
        raise UserError(f"--resume {str(folder)!r}: no such folder", key="resume")
    if not (folder / TRAIN_STATE).is_file():
        raise UserError(f"--resume {str(folder)!r}: not a lora-compat state folder (no {TRAIN_STATE}; state folders "
                        "are the *-state folders written with save_state or on Ctrl-C)", key="resume")
    if not read_train_state(folder):
        raise UserError(f"--resume {str(folder)!r}: {TRAIN_STATE} is damaged", key="resume")
    from safetensors import safe_open

    for i, model in enumerate(accelerator._models):
        name = "model.safetensors" if i == 0 else f"model_{i}.safetensors"
        path = folder / name
        if not path.is_file():
            raise UserError(f"--resume {str(folder)!r}: {name} is missing (the state was saved by a run that trained "
                            "other model parts)", key="resume")
        try:
            with safe_open(str(path), framework="pt") as fh:
                saved = {k: tuple(fh.get_slice(k).get_shape()) for k in fh.keys()}  # noqa: SIM118 - safe_open is no mapping
        except Exception as exc:  # safetensors raises several types for a damaged file
            raise UserError(f"--resume {str(folder)!r}: {name} cannot be read ({exc})", key="resume") from None
        for key, p in model.named_parameters():
            if not p.requires_grad:
                continue
            if key not in saved:
                raise UserError(f"--resume {str(folder)!r}: {key} is not in the state: it was saved from another "
                                "network (network_module, network_args or the trained parts changed)", key="resume")
            if saved[key] != tuple(p.shape):
                raise UserError(f"--resume {str(folder)!r}: {key} was saved with shape {list(saved[key])}, this "
                                f"network has {list(p.shape)} (network_dim / rank or conv_dim changed since the "
                                "state was saved)", key="resume")


def load_train_state(accelerator: Any, folder: Path) -> None:
    """Check ``folder`` (:func:`check_state_folder`) and load it; the frozen base weights are not in it."""
    check_state_folder(accelerator, folder)
    accelerator.load_state(str(folder), strict=False)


def save_train_state(accelerator: Any, folder: Path, epoch: int, global_step: int, seed: int | None = None) -> Path:
    """``accelerator.save_state`` + ``train_state.json``; written to a temp folder then renamed (atomic)."""
    tmp = folder.with_name("." + folder.name + ".tmp")
    if accelerator.is_main_process:
        remove_quietly(tmp)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(tmp))
    if accelerator.is_main_process:
        data: dict[str, int] = {"current_epoch": epoch, "current_step": global_step}
        if seed is not None:
            data["seed"] = seed  # a run without a configured seed must resume with the one it drew
        (tmp / TRAIN_STATE).write_text(json.dumps(data))
        remove_quietly(folder)
        os.replace(tmp, folder)
    accelerator.wait_for_everyone()
    return folder


def read_train_state(folder: Path) -> dict[str, int]:
    """The epoch/step a state folder was saved at; {} when it has no train_state.json."""
    f = folder / TRAIN_STATE
    if not f.is_file():
        return {}
    try:
        data = json.loads(f.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    out = {"current_epoch": int(data.get("current_epoch", 0)), "current_step": int(data.get("current_step", 0))}
    if isinstance(data.get("seed"), int):
        out["seed"] = data["seed"]
    return out


class InterruptFlag:
    """SIGINT handler that only sets a flag: the loop saves state at the next step boundary and returns.

    A second Ctrl-C restores the default behaviour (immediate KeyboardInterrupt)."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: Any = None

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested:
            signal.signal(signal.SIGINT, signal.default_int_handler)
            raise KeyboardInterrupt
        self.requested = True

    def __enter__(self) -> InterruptFlag:
        try:
            self._previous = signal.signal(signal.SIGINT, self._handle)
        except ValueError:  # not the main thread: no handler, Ctrl-C behaves as usual
            self._previous = None
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
