"""``lora-compat demo --output DIR``: offline end-to-end tour on the tiny SD1 model."""

from __future__ import annotations

import json

import click


EXAMPLES = """\b
Examples:
  lora-compat demo --output demo-out
"""


@click.command(name="demo", epilog=EXAMPLES)
@click.option("--output", "output", required=True, type=click.Path(file_okay=False),
              help="Folder for the tiny model, dataset, configs and trained LoRA.")
@click.option("--steps", type=click.IntRange(min=1, max=1000), default=20, show_default=True,
              help="Training steps.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              help="json: print the summary object (stable contract, see docs/cli.md) instead of step lines.")
def command(output: str, steps: int, fmt: str) -> None:
    """Build a tiny SD1 model and a synthetic dataset, write a legacy kohya_ss GUI preset, then
    lint -> migrate -> train -> convert (kohya -> PEFT) -> inspect, all offline."""
    from lora_compat.demo import run_demo

    echo = (lambda msg: None) if fmt == "json" else click.echo
    summary = run_demo(output, steps=steps, echo=echo)
    if fmt == "json":
        click.echo(json.dumps(summary, indent=2))
