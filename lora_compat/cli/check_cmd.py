"""``lora-compat check FILE --target ...``: will every module apply, with the right scale, in that consumer?"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path

import click

EXAMPLES = """\b
Examples:
  lora-compat check my_lora.safetensors --target comfyui
  lora-compat check my_lora.safetensors --target diffusers --format json
"""


@click.command(name="check", epilog=EXAMPLES)
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--target", type=click.Choice(["diffusers", "comfyui", "a1111", "sd-scripts", "ai-toolkit"]),
              required=True,
              help="The consumer that will load the LoRA.")
@click.option("--arch", type=click.Choice(["auto", "sd1", "sd2", "sdxl", "flux1", "chroma", "sd3"]), default="auto",
              show_default=True)
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def command(path: Path, target: str, arch: str, fmt: str) -> None:
    """Exit 0 when every module of PATH applies in TARGET exactly, 1 otherwise (listing modules and why)."""
    from lora_compat.weights.check import check_lora
    from lora_compat.weights.reader import open_lora

    lf = open_lora(path, arch=arch)
    res = check_lora(lf, target)
    if fmt == "json":
        data = res.to_json()
        data.update({"path": str(path), "layout": lf.layout, "arch": lf.arch, "algo": lf.algo})
        click.echo(json.dumps(data, indent=2, allow_nan=False))
    else:
        _print(path, lf, res)
    sys.exit(0 if res.ok else 1)


def _print(path: Path, lf, res) -> None:
    from rich.console import Console
    from rich.markup import escape

    from lora_compat.errors import one_line

    def safe(value: object) -> str:  # file names and keys are literal text: no markup, no control characters
        return escape(one_line(str(value)))

    con = Console(highlight=False)
    head = f"{safe(path)} ({lf.layout}, {lf.arch}, {lf.algo}) -> {res.target}:"
    if res.ok:
        con.print(f"{head} [green]all {res.modules} modules apply[/]")
    else:
        failing = len({m for m, _ in res.problems})
        con.print(f"{head} [red]{failing} of {res.modules} modules will not apply as trained[/]")
        by_reason: dict[str, list[str]] = defaultdict(list)
        for mod, reason in res.problems:
            by_reason[reason].append(mod)
        for reason, mods in by_reason.items():
            con.print(f"  [bold]{len(mods)}[/] x {safe(reason)}")
            for m in mods[:5]:
                con.print(f"      {safe(m)}")
            if len(mods) > 5:
                con.print(f"      ... and {len(mods) - 5} more (--format json lists all)")
    for n in res.notes:
        con.print(f"  note: {safe(n)}")
