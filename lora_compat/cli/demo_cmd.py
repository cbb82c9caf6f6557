"""``lora-compat demo --output DIR [--family sd1|flux1]``: offline end-to-end tour on a tiny SD1 or FLUX.1."""

from __future__ import annotations

import json

import click

EXAMPLES = """\b
Examples:
  lora-compat demo --output demo-out
  lora-compat demo --family flux1 --output flux-demo
"""


@click.command(name="demo", epilog=EXAMPLES)
@click.option("--output", "output", required=True, type=click.Path(file_okay=False),
              help="Folder for the tiny model, dataset, configs and trained LoRA.")
@click.option("--steps", type=click.IntRange(min=1, max=1000), default=20, show_default=True,
              help="Training steps.")
@click.option("--family", type=click.Choice(["sd1", "flux1"]), default="sd1", show_default=True,
              help="sd1: a legacy kohya_ss GUI preset on a tiny SD1; flux1: a kohya_ss GUI FLUX.1 preset on a tiny "
                   "FLUX.1 dev.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              help="json: print the summary object (stable contract, see docs/cli.md) instead of step lines.")
def command(output: str, steps: int, family: str, fmt: str) -> None:
    """Build a tiny SD1 (or FLUX.1) model and a synthetic dataset, write a kohya_ss GUI preset, then
    lint -> migrate -> (plan) -> train -> convert (kohya -> PEFT, FLUX.1: -> diffusers) -> inspect, all offline."""
    from lora_compat.demo import run_demo

    echo = (lambda msg: None) if fmt == "json" else click.echo
    summary = run_demo(output, steps=steps, echo=echo, family=family)
    if fmt == "json":
        click.echo(json.dumps(summary, indent=2))
