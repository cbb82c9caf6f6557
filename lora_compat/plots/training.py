"""``loss.png`` beside a run's outputs: training loss, validation loss and learning rate over the steps."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from lora_compat.plots.canvas import pyplot_free_figure, save_png


def moving_average(values: Sequence[float], window: int) -> list[float]:
    """Mean of the last ``window`` values at every position (fewer at the start)."""
    out, total = [], 0.0
    for i, v in enumerate(values):
        total += v
        if i >= window:
            total -= values[i - window]
        out.append(total / min(i + 1, window))
    return out


def plot_training(path: str | os.PathLike[str], losses: Sequence[float], *,
                  lrs: Sequence[Sequence[float]] = (), lr_labels: Sequence[str] = (),
                  validation: Sequence[tuple[int, float]] = (), average_window: int | None = None,
                  title: str = "training") -> Path:
    """Draw the loss of every optimizer step (1-based), its moving average over ``average_window`` steps (one
    epoch: sd-scripts' ``avr_loss``), the validation loss points ``(step, loss)`` and, when given, the LR of each
    group per step; write the PNG."""
    rows = 2 if lrs else 1
    fig, axes = pyplot_free_figure(rows, height_per_row=3.2)
    ax = axes[0]
    steps = list(range(1, len(losses) + 1))
    if losses:
        ax.plot(steps, list(losses), color="tab:blue", alpha=0.35, linewidth=0.8, label="loss")
        window = max(1, average_window or max(1, len(losses) // 20))
        ax.plot(steps, moving_average(losses, window), color="tab:blue", linewidth=1.8,
                label=f"average of {window} step{'s' if window > 1 else ''}")
    if validation:
        vs, vl = zip(*validation, strict=False)
        ax.plot(list(vs), list(vl), color="tab:red", marker="o", markersize=4, linewidth=1.2,
                label="validation loss")
    ax.set_ylabel("loss")
    ax.grid(True, alpha=0.3)
    ax.set_title(title)
    if losses or validation:
        ax.legend(loc="best", fontsize=8)
    if lrs:
        lax = axes[1]
        groups = list(zip(*lrs, strict=False))  # per step [g0, g1, ...] -> per group
        labels = list(lr_labels) or [f"group {i}" for i in range(len(groups))]
        for label, values in zip(labels, groups, strict=False):
            lax.plot(list(range(1, len(values) + 1)), list(values), linewidth=1.4, label=label)
        lax.set_ylabel("learning rate")
        lax.ticklabel_format(axis="y", style="sci", scilimits=(-3, 3))
        lax.grid(True, alpha=0.3)
        lax.legend(loc="best", fontsize=8)
    axes[-1].set_xlabel("optimizer step")
    return save_png(fig, path)
