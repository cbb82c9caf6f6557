"""``lora-compat train CONFIG``: read any supported config, plan it, and train (accelerate program)."""

from __future__ import annotations

import json
import sys

import click

from lora_compat.errors import UserError


class StartupInterruptedError(UserError):
    """Ctrl-C outside the training loop: one line, exit 130 (the shell's code for SIGINT)."""

    exit_code = 130


EXAMPLES = """\b
Examples:
  lora-compat train 'SDXL - LoRA AI_Now prodigy v1.0.json' --base-model sdxl.safetensors --train-data img/ --output out/
  lora-compat train config.toml --set network_dim=16 --set learning_rate=5e-5
  lora-compat train demo-out/migrated.toml --base-model tiny:sd1 --max-steps 20
  lora-compat train config.toml --resume out/<state folder>     # after Ctrl-C
  lora-compat train config.toml --logging-dir logs/              # TensorBoard: tensorboard --logdir logs/
  WANDB_MODE=offline lora-compat train config.toml --log-with wandb --logging-dir logs/ --set wandb_run_name=try1
  lora-compat train config.toml --format json | jq .validation   # samples, validation losses, loss.png, logs
  accelerate launch --multi_gpu -m lora_compat train config.toml   # several GPUs
"""


@click.command(name="train", epilog=EXAMPLES)
@click.argument("config", type=click.Path(dir_okay=False))
@click.option("--dialect", default=None, help="Force the input dialect instead of detecting it.")
@click.option("--base-model", default=None,
              help="Base model: diffusers folder, .safetensors file, or tiny:sd1|sd2|sdxl.")
@click.option("--train-data", default=None, type=click.Path(file_okay=False),
              help="Training images: a kohya folder of N_name subfolders (replaces the config's data).")
@click.option("--output", "output", default=None, type=click.Path(file_okay=False), help="Output folder.")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="Override an sd-scripts option (repeatable).")
@click.option("--max-steps", type=click.IntRange(min=1), default=None, help="Stop after N optimizer steps.")
@click.option("--resume", default=None, type=click.Path(file_okay=False), help="Resume from a state folder.")
@click.option("--peft/--no-peft", default=False, help="Also write the adapters as PEFT folders.")
@click.option("--log-with", "log_with", type=click.Choice(["tensorboard", "wandb", "all"]), default=None,
              help="Experiment trackers (sd-scripts' log_with; default: tensorboard when a logging dir is set). "
                   "wandb needs the wandb package and a login (WANDB_API_KEY, `wandb login`, or WANDB_MODE=offline).")
@click.option("--logging-dir", "logging_dir", default=None, type=click.Path(file_okay=False),
              help="Log folder (sd-scripts' logging_dir): each run logs to DIR/<log_prefix><YYYYmmddHHMMSS>.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              help="Result summary format (json: a stable contract, see docs/cli.md).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def command(config: str, dialect: str | None, base_model: str | None, train_data: str | None, output: str | None,
            sets: tuple[str, ...], max_steps: int | None, resume: str | None, peft: bool, log_with: str | None,
            logging_dir: str | None, fmt: str, quiet: bool) -> None:
    """Train a LoRA from CONFIG (kohya_ss GUI JSON, Derrian JSON/TOML, sd-scripts TOML or command line,
    native TOML). Ctrl-C saves a resumable state folder and exits with code 130."""
    from lora_compat.config.family import decide_family, require_family
    from lora_compat.config.load import load_config
    from lora_compat.config.overrides import apply_overrides, parse_set

    cfg = load_config(config, dialect=dialect, resolve_dataset=True)  # training needs the files
    overrides = parse_set(sets)
    # --log-with / --logging-dir are sd-scripts' options under their command-line spelling (they win over --set)
    overrides.update({k: v for k, v in (("log_with", log_with), ("logging_dir", logging_dir)) if v is not None})
    # a value the script computes at run time (or takes from outside) would silently become a default
    unknown = next((n for n in cfg.notes if n.code == "shell-expression-unresolved"
                    and n.data.get("option") not in overrides), None)
    if unknown is not None:
        o = unknown.origin
        raise UserError(f"{unknown.message}; training needs every value: set it in the script or with --set",
                        file=o.file if o else None, line=o.line if o else None)
    if "resume" in overrides:
        raise UserError("--set resume: use --resume DIR")
    if resume and cfg.get("resume"):
        cfg.options.pop("resume")  # --resume replaces the config's value
    apply_overrides(cfg, overrides)
    decide_family(cfg, base_model=base_model, overrides=overrides)  # --base-model / --set sdxl|v2 can change it
    require_family(cfg, "train")

    from lora_compat.train.engine import RunOptions, run_plan, training_plan

    plan = training_plan(cfg, base_model=base_model, train_data=train_data, output_dir=output, max_steps=max_steps)
    try:
        result = run_plan(plan, RunOptions(show_progress=not quiet and fmt == "text", save_peft=peft,
                                           log=lambda m: click.echo(m, err=True), resume=resume))
    except KeyboardInterrupt:
        # Ctrl-C before the loop installed its handler (model loading, caching): nothing to resume from
        raise StartupInterruptedError("interrupted during start-up, before the first training step: nothing was "
                                      "trained or saved") from None
    summary = {
        "final_model": str(result.final_model) if result.final_model else None,
        "saved_models": [str(p) for p in result.saved_models],
        "global_step": result.global_step,
        "max_train_steps": result.max_train_steps,
        "epochs": result.epochs,
        "first_loss": result.losses[0] if result.losses else None,
        "last_loss": result.losses[-1] if result.losses else None,
        "interrupted": result.interrupted,
        "state_dir": str(result.state_dir) if result.state_dir else None,
        "peft_dir": str(result.peft_dir) if result.peft_dir else None,
        "total_batch_size": result.total_batch_size,
        "process_index": result.process_index,
        "num_processes": result.num_processes,
        "weights_sha256": result.weights_sha256,
        "samples": [str(p) for p in result.samples],
        "validation": [{"step": step, "loss": loss} for step, loss in result.validation],
        "loss_plot": str(result.loss_plot) if result.loss_plot else None,
        "log_dir": str(result.log_dir) if result.log_dir else None,
        "trackers": list(result.trackers),
        "run": result.record,
    }
    if fmt == "json":
        # one line per process: under `accelerate launch` every rank prints its own summary
        click.echo(json.dumps(summary))
    elif result.interrupted:
        click.echo(f"interrupted at step {result.global_step}; state saved to {result.state_dir}\n"
                   f"resume with: lora-compat train {config} --resume {result.state_dir}", err=True)
    elif result.process_index == 0:
        click.echo(f"trained {result.global_step} steps; wrote {result.final_model}")
    if result.interrupted:
        sys.exit(130)
