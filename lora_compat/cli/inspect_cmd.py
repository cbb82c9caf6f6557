"""``lora-compat inspect FILE|DIR``: layout, architecture, algorithm, modules, ranks, alphas, metadata (no torch)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

EXAMPLES = """\b
Examples:
  lora-compat inspect my_lora.safetensors
  lora-compat inspect my_lora_peft/ --format json | jq .ranks
  lora-compat inspect my_lora.safetensors --plot blocks.png
"""


@click.command(name="inspect", epilog=EXAMPLES)
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--arch", type=click.Choice(["auto", "sd1", "sd2", "sdxl", "flux1", "chroma", "sd3"]), default="auto",
              show_default=True)
@click.option("--allow-pickle", is_flag=True, help="Accept .ckpt/.pt pickles (torch.load(weights_only=True)).")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--plot", "plot", type=click.Path(path_type=Path), default=None, metavar="FILE.png",
              help="Also draw rank, alpha and weight-change norm per block (UNet / text encoders) into a PNG. "
                   "Reads every tensor (numpy; no torch); needs matplotlib (the plot extra).")
def command(path: Path, arch: str, allow_pickle: bool, fmt: str, plot: Path | None) -> None:
    """Inspect a LoRA file (kohya / diffusers) or a PEFT adapter folder."""
    from lora_compat.weights.inspect import inspect_data
    from lora_compat.weights.reader import open_lora

    if plot is not None:
        from lora_compat.plots.canvas import check_png_path

        check_png_path(plot)
    lf = open_lora(path, arch=arch, allow_pickle=allow_pickle)
    data = inspect_data(lf)
    if plot is not None:
        _plot(lf, path, plot)
    if fmt == "json":
        click.echo(json.dumps(data, indent=2, ensure_ascii=False, allow_nan=False))
        return
    _print(data)


def _plot(lf: Any, path: Path, dst: Path) -> None:
    """``--plot``: per-block rank / alpha / delta norm (weights.norms), drawn by plots.lora_blocks."""
    from lora_compat.plots.lora_blocks import plot_lora_blocks
    from lora_compat.weights.norms import block_summaries, module_norms

    if not lf.modules:
        raise click.UsageError("the file has no LoRA modules to draw")
    plot_lora_blocks(dst, block_summaries(module_norms(lf)), title=f"{path.name}: {lf.arch} {lf.algo}")
    click.echo(f"wrote {dst}", err=True)


def _dist(d: dict, top: int = 8) -> str:
    """Most frequent values first, at most ``top`` of them (json output has them all)."""
    items = sorted(d.items(), key=lambda kv: -kv[1])
    text = ", ".join(f"{k} x{v}" for k, v in items[:top])
    return text + (f", ... ({len(items)} distinct values)" if len(items) > top else "")


def _safe(value: object) -> str:
    """A value from the file (or its path) as literal text: no rich markup, no control characters."""
    from rich.markup import escape

    from lora_compat.errors import one_line

    return escape(one_line(str(value)))


def _print(data: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    from lora_compat.weights.inspect import metadata_preview

    con = Console(highlight=False)
    con.print(f"[bold]{_safe(data['path'])}[/]")
    naming = f", UNet names: {data['unet_naming']}" if data.get("unet_naming") else ""
    if data.get("custom_widths"):
        naming += " (layer widths differ from the real model: a tiny/test model)"
    con.print(f"  layout [bold]{data['layout']}[/], arch [bold]{data['arch']}[/], algo [bold]{data['algo']}[/]"
              f"{naming}; {data['tensors']} tensors, {data['size_bytes'] / 1024 / 1024:.1f} MiB, dtypes "
              + ", ".join(f"{k} x{v}" for k, v in data["dtypes"].items()))
    t = Table(title="modules", show_edge=False)
    for col in ("part", "modules", "groups", "algos"):
        t.add_column(col)
    for part, info in data["modules"].items():
        t.add_row(part, str(info["count"]), ", ".join(f"{k} {v}" for k, v in info["groups"].items()),
                  ", ".join(f"{k} {v}" for k, v in info["algos"].items()))
    con.print(t)
    con.print("  ranks:  " + _dist(data["ranks"]))
    con.print("  alphas: " + _dist(data["alphas"])
              + (f"  ({data['missing_alpha']} modules without alpha: scale 1)" if data["missing_alpha"] else ""))
    con.print("  scales: " + _dist(data["scales"]))
    if data["dora"]["modules"]:
        con.print(f"  DoRA: {data['dora']['modules']} modules, axes {data['dora']['axes']}")
    if data["metadata"]:
        mt = Table(title="metadata", show_edge=False)
        mt.add_column("key")
        mt.add_column("value")
        for k, v in data["metadata"].items():
            mt.add_row(_safe(k), _safe(metadata_preview(str(v))))
        con.print(mt)
