"""``plan --plot``: the learning rate of each parameter group over the optimizer steps."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from lora_compat.plots.canvas import pyplot_free_figure, save_png


def restart_steps(values: Sequence[float], after: int = 0) -> list[int]:
    """Steps (0-based) where the LR rises again after ``after`` (the warmup): the restarts of
    ``cosine_with_restarts`` and any other schedule that climbs back. A rise smaller than 1e-9 of the peak is
    rounding, not a restart."""
    peak = max((abs(v) for v in values), default=0.0)
    eps = 1e-9 * peak
    return [i for i in range(max(1, after + 1), len(values)) if values[i] > values[i - 1] + eps]


def plot_lr_schedule(path: str | os.PathLike[str], groups: Sequence[tuple[str, Sequence[float]]], *,
                     steps_per_epoch: int | None = None, warmup_steps: int | None = None,
                     title: str = "learning rate", note: str | None = None) -> Path:
    """Draw one curve per ``(label, lr per optimizer step)`` group and write the PNG.

    Marks: the warmup as a shaded band, restarts (:func:`restart_steps` of the first group) as dashed lines,
    epoch boundaries (every ``steps_per_epoch`` optimizer steps) as ticks along the top. ``note`` is printed in a
    corner (what the numbers mean when the optimizer adapts its own step size).
    """
    fig, (ax,) = pyplot_free_figure(1, height_per_row=4.0)
    total = max((len(v) for _, v in groups), default=0)
    steps = list(range(1, total + 1))
    for label, values in groups:
        ax.plot(steps[:len(values)], list(values), label=label, linewidth=1.6)
    if warmup_steps:
        ax.axvspan(0.5, warmup_steps + 0.5, color="tab:orange", alpha=0.15, label=f"warmup ({warmup_steps} steps)")
    if groups:
        first = list(groups[0][1])
        for i, s in enumerate(restart_steps(first, warmup_steps or 0)):
            ax.axvline(s + 1, color="tab:gray", linestyle="--", linewidth=0.9,
                       label="restart" if i == 0 else None)
    if steps_per_epoch and total:
        marks = list(range(steps_per_epoch, total + 1, steps_per_epoch))
        top = ax.secondary_xaxis("top")
        top.set_xticks(marks if len(marks) <= 40 else marks[:: -(-len(marks) // 40)])
        top.set_xticklabels([])
        top.set_xlabel(f"epochs ({steps_per_epoch} optimizer steps each)", fontsize=8)
        for m in marks:
            ax.axvline(m + 0.5, color="tab:gray", linewidth=0.4, alpha=0.5)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("learning rate")
    ax.set_xlim(0.5, max(total, 1) + 0.5)
    ax.set_ylim(bottom=0)
    ax.ticklabel_format(axis="y", style="sci", scilimits=(-3, 3))
    ax.grid(True, alpha=0.3)
    ax.set_title(title)
    ax.legend(loc="best", fontsize=8)
    if note:
        ax.text(0.01, 0.02, note, transform=ax.transAxes, fontsize=8, alpha=0.8, va="bottom")
    return save_png(fig, path)
