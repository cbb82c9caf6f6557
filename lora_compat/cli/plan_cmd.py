"""``lora-compat plan CONFIG``: what the training engine will run."""

from __future__ import annotations

import json

import click


@click.command(name="plan")
@click.argument("config", type=click.Path(dir_okay=False))
@click.option("--dialect", default=None, help="Force the input dialect instead of detecting it.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", help="Output format.")
@click.option("--modules/--no-modules", default=False,
              help="Text: list every target module path (json always includes them).")
@click.option("--images", "images", multiple=True, metavar="FOLDER=COUNT",
              help="Image count of a folder that is not on this machine (a subset image_dir, or a kohya "
                   "'10_name' sub-folder by name); repeatable.")
def command(config: str, dialect: str | None, fmt: str, modules: bool, images: tuple[str, ...]) -> None:
    """Resolve CONFIG into the training plan: steps, warmup, parameter groups, PEFT configs per model part,
    options the engine implements itself, and anything unsupported.

    \b
    Examples:
      lora-compat plan my_lora.toml
      lora-compat plan old_preset.json --images "10_sks dog=25" --images "1_dog=200"
      lora-compat plan my_lora.toml --modules
      lora-compat plan my_lora.toml --format json > plan.json
    """
    from lora_compat.config.family import require_family
    from lora_compat.config.load import load_config
    from lora_compat.migrate.run import refuse_invalid
    from lora_compat.plan import make_plan

    from lora_compat.errors import UserError

    counts: dict[str, int] = {}
    for item in images:
        folder, sep, n = item.rpartition("=")
        if not sep or not folder or not n.strip().isdigit():
            raise UserError(f"--images expects FOLDER=COUNT, got {item!r}")
        counts[folder] = int(n)
    cfg = load_config(config, dialect=dialect)
    require_family(cfg, "plan")
    refuse_invalid(cfg)
    plan = make_plan(cfg, image_counts=counts or None)
    if fmt == "json":
        click.echo(json.dumps(plan.to_json(), indent=2, default=str))
        return
    _render_text(plan, modules)


def _render_text(plan, modules: bool) -> None:  # type: ignore[no-untyped-def]
    from rich.console import Console
    from rich.markup import escape

    console = Console(highlight=False, soft_wrap=True)

    def say(text: str, style: str | None = None) -> None:
        # config values (paths, args) are printed literally: '[/x]' in a path must not be read as markup
        console.print(escape(text), style=style)

    s = plan.steps
    say(f"{plan.canonical.source} ({plan.canonical.dialect}) -> {plan.arch}, {plan.network_module}, base "
        f"{plan.base_model or '(not set)'}" + (", v-parameterization" if plan.v_parameterization else ""), "bold")
    say("steps", "bold")
    say(f"  epochs {_n(s.epochs)}, max_train_steps {_n(s.max_train_steps)}, batches/epoch "
        f"{_n(s.steps_per_epoch)}, optimizer steps/epoch {_n(s.optimizer_steps_per_epoch)}")
    say(f"  batch {s.train_batch_size} x grad_accum {s.gradient_accumulation_steps} = effective batch "
        f"{s.effective_batch_size}; warmup {_n(s.warmup_steps)} steps"
        + (f", decay {s.decay_steps} steps" if s.decay_steps else ""))
    for line in s.explanation:
        say(f"  - {line}")
    say("parameter groups (optimizer order)", "bold")
    if not plan.param_groups:
        say("  none: nothing would be trained")
    for g in plan.param_groups:
        extra = (f" block {g.block}" if g.block is not None else "") + (" LoRA+ (lora_B)" if g.lora_plus else "")
        say(f"  {g.part}{extra}: lr {g.lr}")
    for a in plan.adapters:
        kw = dict(a.peft_kwargs)
        targets = kw.pop("target_modules", [])
        rp, ap = kw.pop("rank_pattern", {}), kw.pop("alpha_pattern", {})
        say(f"{a.part} ({a.kohya_prefix}): {a.peft_config_class}("
            + ", ".join(f"{k}={v!r}" for k, v in kw.items()) + ")")
        say(f"  {len(targets)} target modules, {len(rp)} rank / {len(ap)} alpha overrides; "
            f"lr {a.lr if a.lr is not None else 'not trained'}")
        if modules:
            for t in (targets if isinstance(targets, list) else [targets]):
                r = rp.get(t, kw.get("r"))
                say(f"    {t}  r={r}  ({a.kohya_names.get(t, '?')})")
    if plan.engine_options:
        say("implemented by the engine (no PEFT field)", "bold")
        for k, v in plan.engine_options.items():
            why = v.get("why") if isinstance(v, dict) else None
            val = {kk: vv for kk, vv in v.items() if kk != "why"} if isinstance(v, dict) else v
            say(f"  {k}: {val}" + (f" - {why}" if why else ""))
    if plan.unsupported:
        say("unsupported", "bold red")
        for u in plan.unsupported:
            say(f"  {u.option}: {u.why}")
    for n in plan.notes:
        say(f"note: {n}")


def _n(v) -> str:  # type: ignore[no-untyped-def]
    return "unknown" if v is None else str(v)
