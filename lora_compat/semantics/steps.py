"""Step and epoch arithmetic: sd-scripts' ``train_network.py`` and the front-ends' own estimates.

sd-scripts (reference §4.7): one epoch is every batch of the dataset once; with ``max_train_epochs`` the run
lasts ``epochs * ceil(batches / processes / gradient_accumulation_steps)`` optimizer steps, otherwise
``max_train_steps``; the loop runs ``ceil(max_train_steps / optimizer steps per epoch)`` epochs. A batch never
mixes buckets, so a dataset has ``Σ ceil(samples in bucket / batch_size)`` batches.

The kohya_ss GUI and Derrian's first scripts computed a step count themselves from the image folders and
passed it as ``max_train_steps`` (legacy-dialects.md §2.6, §3.4); their formulas are here too.
"""

from __future__ import annotations

import math
from collections.abc import Iterable


def batches_per_epoch(bucket_samples: Iterable[int], batch_size: int) -> int:
    """Batches of one dataset: every bucket (samples = images x repeats) cut into ``batch_size`` batches, the
    last one partial."""
    bs = max(1, int(batch_size))
    return sum(math.ceil(n / bs) for n in bucket_samples if n > 0)


def optimizer_steps_per_epoch(batches: int, num_processes: int = 1, gradient_accumulation_steps: int = 1) -> int:
    """Optimizer steps of one epoch on each process: ``ceil(batches / processes / gradient accumulation)``
    (accelerate gives every process ``ceil(batches / processes)`` batches)."""
    return math.ceil(math.ceil(batches / max(1, num_processes)) / max(1, gradient_accumulation_steps))


def max_train_steps_for_epochs(epochs: int, batches: int, num_processes: int = 1,
                               gradient_accumulation_steps: int = 1) -> int:
    """``max_train_epochs`` in optimizer steps (it overrides ``max_train_steps``)."""
    return int(epochs) * optimizer_steps_per_epoch(batches, num_processes, gradient_accumulation_steps)


def train_epochs(max_train_steps: int, batches: int, num_processes: int = 1,
                 gradient_accumulation_steps: int = 1) -> int:
    """Epochs the loop runs: ``ceil(max_train_steps / optimizer steps per epoch)``."""
    per_epoch = optimizer_steps_per_epoch(batches, num_processes, gradient_accumulation_steps)
    return math.ceil(max_train_steps / per_epoch) if per_epoch else 0


def save_every_n_epochs_from_ratio(num_epochs: int, save_n_epoch_ratio: int) -> int:
    """``save_n_epoch_ratio``: save about that many times in the run, ``floor(epochs / ratio)`` or 1."""
    return math.floor(num_epochs / save_n_epoch_ratio) or 1


def kohya_gui_max_train_steps(samples: int, batch_size: int, gradient_accumulation_steps: int, epochs: int,
                              reg_factor: int) -> int:
    """The kohya_ss GUI's ``max_train_steps`` from its ``epoch`` field (legacy-dialects.md §2.6):
    ``ceil(images x repeats / batch / grad_accum x epoch x reg_factor)``, reg_factor 2 with regularization."""
    return math.ceil(samples / batch_size / gradient_accumulation_steps * epochs * reg_factor)


def derrian_a1_max_train_steps(samples: int, batch_size: int, epochs: int, *, floor_per_epoch: bool = False,
                               reg_samples: int = 0) -> int:
    """Derrian's ArgStore scripts before 2023-02-04 (legacy-dialects.md §3.4): ``int(samples / batch x epochs)``;
    ``floor_per_epoch``: the versions that divided with ``//`` (``int(samples // batch x epochs)``);
    ``reg_samples`` > 0 doubles the count (the versions that counted regularisation images)."""
    per_epoch = samples // batch_size if floor_per_epoch else samples / batch_size
    return int(per_epoch * epochs) * (2 if reg_samples else 1)


def derrian_a1_warmup_steps(estimate: int, ratio: float) -> int:
    """Derrian's ArgStore ``warmup_lr_ratio`` in steps: ``int(estimate x ratio)``."""
    return int(estimate * ratio)


def derrian_ui_max_train_steps(samples: int, epochs: int, batch_size: int) -> int:
    """Derrian's LoRA_Easy_Training_Scripts UI (U1, legacy-dialects.md §4.1 step 5) step estimate from the
    subsets: ``Σ images x repeats x epochs // batch``."""
    return samples * epochs // max(1, batch_size)


def derrian_ui_warmup_steps(estimate: int, ratio: float) -> int:
    """Derrian's UI ``warmup_ratio`` in steps: ``round(estimate x ratio)``."""
    return round(estimate * ratio)


def kohya_gui_warmup_steps(percent: float, max_train_steps: int, *, whole_numbers: bool = False) -> int:
    """The kohya_ss GUI's ``lr_warmup`` percent in steps: ``round(percent x steps / 100)``; ``whole_numbers``:
    the GUIs that ``int()`` the percent and the steps first (``round(int(percent) x int(steps) / 100)``)."""
    if whole_numbers:
        return round(float(int(percent) * int(max_train_steps) / 100))
    return round(percent * max_train_steps / 100)


def balance_regularization(reg_repeats: list[int], num_train_samples: int) -> list[int]:
    """sd-scripts' regularization balancing (``DreamBoothDataset``, reference §4.1): regularization images are
    registered in order, each with its repeats, until their samples reach the training samples; if one pass
    is not enough, one more repeat at a time goes round-robin. Returns each image's final repeats (0: the
    image is not used)."""
    out = [0] * len(reg_repeats)
    if not reg_repeats or num_train_samples <= 0:
        return out
    n = 0
    first_pass = True
    while n < num_train_samples:
        for i, repeats in enumerate(reg_repeats):
            if first_pass:
                out[i] = repeats
                n += repeats
            else:
                out[i] += 1
                n += 1
            if n >= num_train_samples:
                break
        first_pass = False
    return out
