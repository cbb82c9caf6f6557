"""The pictures (lora_compat.plots): PNGs a test opens and checks (size, not blank), and their helpers."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from lora_compat.errors import UserError
from lora_compat.plots.canvas import check_png_path
from lora_compat.plots.lr_schedule import restart_steps
from lora_compat.plots.training import moving_average


def png_facts(path: Path) -> tuple[tuple[int, int], int]:
    """Size and number of distinct colours of a PNG (a blank canvas has one)."""
    from PIL import Image

    with Image.open(path) as im:
        assert im.format == "PNG"
        return im.size, len(im.convert("RGB").getcolors(maxcolors=1 << 24) or [])


def test_restart_steps_and_moving_average():
    cycle = [math.cos(math.pi * i / 10) for i in range(10)]
    assert restart_steps([0.1, 0.2, *cycle, *cycle], after=2) == [12]
    assert restart_steps([1.0] * 5) == []
    assert restart_steps([0.0, 0.5, 1.0, 0.5], after=0) == [1, 2]      # a warmup counted when not excluded
    assert moving_average([1.0, 2.0, 3.0, 4.0], 2) == [1.0, 1.5, 2.5, 3.5]


def test_png_path_rules(tmp_path):
    assert check_png_path(tmp_path / "a.PNG").name == "a.PNG"
    with pytest.raises(UserError, match=r"ending in \.png"):
        check_png_path(tmp_path / "a.jpg")
    (tmp_path / "d.png").mkdir()
    with pytest.raises(UserError, match="is a folder"):
        check_png_path(tmp_path / "d.png")


def test_lr_and_training_pictures(tmp_path):
    pytest.importorskip("matplotlib")
    from lora_compat.plots.lr_schedule import plot_lr_schedule
    from lora_compat.plots.training import plot_training

    steps = 60
    lrs = [min(1.0, (i + 1) / 10) * 0.5 * (1 + math.cos(math.pi * ((i % 25) / 25))) for i in range(steps)]
    out = plot_lr_schedule(tmp_path / "lr.png", [("unet", [1e-4 * v for v in lrs]), ("text encoder",
                                                                                       [5e-5 * v for v in lrs])],
                           steps_per_epoch=12, warmup_steps=10, title="plan")
    size, colours = png_facts(out)
    assert size == (1000, 480) and colours > 50
    out = plot_training(tmp_path / "loss.png", [0.2 + 0.05 * math.sin(i) for i in range(steps)],
                        lrs=[[1e-4, 5e-5]] * steps, lr_labels=["unet", "te"], validation=[(20, 0.21), (40, 0.2)],
                        average_window=12)
    size, colours = png_facts(out)
    assert size[0] == 1000 and size[1] > 500 and colours > 50
