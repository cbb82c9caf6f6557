"""A headless matplotlib figure and its atomic PNG writer (the one place that imports matplotlib)."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

from lora_compat.errors import UserError

#: Install hint when matplotlib is missing (the ``plot`` extra; ``train`` includes it).
INSTALL_HINT = "pip install 'lora-compat[plot]'"


def check_png_path(path: str | os.PathLike[str], *, option: str = "--plot") -> Path:
    """The destination of a picture: it must end in ``.png`` (an existing PNG is replaced: the tool writes PNGs,
    never reads them, so no input can be overwritten)."""
    p = Path(path)
    if p.suffix.lower() != ".png":
        raise UserError(f"the picture is written as PNG: give a file name ending in .png, not {p.name!r}",
                        key=option)
    if p.is_dir():
        raise UserError("is a folder; give a file name ending in .png", file=str(p), key=option)
    return p


def pyplot_free_figure(nrows: int = 1, *, width: float = 10.0, height_per_row: float = 2.6,
                       sharex: bool = True) -> tuple[Any, list[Any]]:
    """A matplotlib ``Figure`` on an Agg canvas with ``nrows`` stacked axes (matplotlib's object API: nothing is
    shown, no pyplot global state, safe without a display)."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise UserError(f"drawing pictures needs matplotlib, which is not installed ({INSTALL_HINT})") from None
    fig = Figure(figsize=(width, max(2.0, height_per_row * nrows + 0.8)), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, 1, sharex=sharex, squeeze=False)[:, 0].tolist()
    return fig, axes


def save_png(fig: Any, path: str | os.PathLike[str], *, dpi: int = 100) -> Path:
    """Render ``fig`` and write it to ``path`` atomically (a reader never sees half a PNG)."""
    from lora_compat.atomic import write_bytes

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    dst = Path(path)
    write_bytes(dst, buf.getvalue())
    return dst
