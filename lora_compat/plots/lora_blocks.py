"""``inspect --plot``: rank, alpha and delta-weight norm per block of a LoRA file, one section per model part."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lora_compat.plots.canvas import pyplot_free_figure, save_png

PART_NAMES = {"unet": "UNet", "te1": "TE1", "te2": "TE2", "te3": "T5", "transformer": "transformer"}


def plot_lora_blocks(path: str | os.PathLike[str], blocks: Sequence[Any], *, title: str = "LoRA") -> Path:
    """Three stacked panels over the blocks (parts side by side, separated by lines): rank (bar up to the largest
    rank of the block, a tick at the smallest when they differ), alpha (likewise) and ``‖ΔW‖_F`` of the block.
    ``blocks`` are :class:`lora_compat.weights.norms.BlockSummary` objects (or anything with their fields)."""
    fig, (rank_ax, alpha_ax, norm_ax) = pyplot_free_figure(3, width=max(8.0, min(24.0, 0.22 * len(blocks) + 3)),
                                                           height_per_row=2.4)
    xs = list(range(len(blocks)))
    colors: dict[str, str] = {}
    palette = ["tab:blue", "tab:green", "tab:purple", "tab:brown", "tab:olive"]
    for b in blocks:
        colors.setdefault(b.part, palette[len(colors) % len(palette)])
    col = [colors[b.part] for b in blocks]

    def ranged(ax: Any, top: list[float | None], low: list[float | None], label: str) -> None:
        ax.bar(xs, [t or 0 for t in top], color=col, width=0.8)
        lx = [x for x, t, lo in zip(xs, top, low, strict=False) if lo is not None and t is not None and lo != t]
        ly = [lo for t, lo in zip(top, low, strict=False) if lo is not None and t is not None and lo != t]
        if lx:
            ax.scatter(lx, ly, marker="_", color="black", s=60, zorder=3, label="smallest in block")
            ax.legend(loc="upper right", fontsize=7)
        ax.set_ylabel(label)
        ax.grid(True, axis="y", alpha=0.3)

    ranged(rank_ax, [b.rank_max for b in blocks], [b.rank_min for b in blocks], "rank")
    ranged(alpha_ax, [b.alpha_max for b in blocks], [b.alpha_min for b in blocks], "alpha")
    norm_ax.bar(xs, [b.norm for b in blocks], color=col, width=0.8)
    norm_ax.set_ylabel("‖ΔW‖ (Frobenius)")
    norm_ax.grid(True, axis="y", alpha=0.3)
    norm_ax.set_xticks(xs)
    norm_ax.set_xticklabels([b.block for b in blocks], rotation=90, fontsize=7 if len(blocks) < 60 else 5)
    norm_ax.set_xlim(-0.6, len(blocks) - 0.4)
    start = 0
    for i in range(1, len(blocks) + 1):
        if i == len(blocks) or blocks[i].part != blocks[start].part:
            for ax in (rank_ax, alpha_ax, norm_ax):
                if i < len(blocks):
                    ax.axvline(i - 0.5, color="black", linewidth=0.8)
            rank_ax.text((start + i - 1) / 2, 1.02, PART_NAMES.get(blocks[start].part, blocks[start].part),
                         transform=rank_ax.get_xaxis_transform(), ha="center", va="bottom", fontsize=9,
                         color=colors[blocks[start].part])
            start = i
    rank_ax.set_title(title, pad=16)
    return save_png(fig, path)
