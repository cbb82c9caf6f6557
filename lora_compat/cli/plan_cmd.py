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
@click.option("--base-model", default=None, help="As train --base-model: the plan of that run.")
@click.option("--train-data", default=None, type=click.Path(file_okay=False), help="As train --train-data.")
@click.option("--output", "output", default=None, type=click.Path(file_okay=False), help="As train --output.")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="As train --set (repeatable).")
@click.option("--max-steps", type=click.IntRange(min=1), default=None, help="As train --max-steps.")
@click.option("--plot", "plot", default=None, metavar="FILE.png",
              help="Also draw the learning rate of every parameter group over the optimizer steps (warmup, "
                   "restarts and epochs marked) into a PNG; needs matplotlib (the plot extra).")
def command(config: str, dialect: str | None, fmt: str, modules: bool, images: tuple[str, ...],
            base_model: str | None, train_data: str | None, output: str | None, sets: tuple[str, ...],
            max_steps: int | None, plot: str | None) -> None:
    """Resolve CONFIG into the training plan: exactly what `train` runs — steps, warmup, parameter groups,
    PEFT configs per model part, optimizer (and whether its package is installed), schedule, precision, data,
    outputs and metadata, options the engine implements itself, options it does not run, and anything it
    refuses or cannot run as sd-scripts would.

    \b
    Examples:
      lora-compat plan my_lora.toml
      lora-compat plan old_preset.json --images "10_sks dog=25" --images "1_dog=200"
      lora-compat plan my_lora.toml --modules
      lora-compat plan my_lora.toml --format json > plan.json
      lora-compat plan preset.json --train-data img/ --set network_dim=8   # the plan of that train run
      lora-compat plan my_lora.toml --plot lr.png                          # the LR schedule as a picture
    """
    from lora_compat.config.family import decide_family, require_family
    from lora_compat.config.kohya_folder import parse_image_counts
    from lora_compat.config.load import load_config
    from lora_compat.config.overrides import apply_overrides, parse_set
    from lora_compat.config.validate import refuse_invalid
    from lora_compat.plan import RunOverrides, make_plan

    if plot is not None:
        from lora_compat.plots.canvas import check_png_path

        check_png_path(plot)
    counts = parse_image_counts(images) or {}
    # the readers resolve front-end lengths/warmups from the counts as the front-end did (kohya_ss GUI epoch)
    cfg = load_config(config, dialect=dialect, image_counts=counts)
    overrides = parse_set(sets)
    apply_overrides(cfg, overrides)
    if base_model is not None or overrides:
        decide_family(cfg, base_model=base_model, overrides=overrides)  # as train: these can change the family
    require_family(cfg, "plan")
    refuse_invalid(cfg)
    plan = make_plan(cfg, image_counts=counts or None,
                     overrides=RunOverrides(base_model, train_data, output, max_steps))
    if plot is not None:
        _plot(plan, plot)
    if fmt == "json":
        click.echo(json.dumps(plan.to_json(), indent=2, default=str))
        return
    _render_text(plan, modules)


def _plot(plan, dst: str) -> None:
    """``--plot``: the LR per group (plan.lr_curve) drawn by plots.lr_schedule."""
    from lora_compat.plan.lr_curve import lr_curves
    from lora_compat.plots.lr_schedule import plot_lr_schedule

    curves = lr_curves(plan)
    title = f"{plan.source or 'plan'}: {plan.scheduler.name}, {plan.steps.max_train_steps} optimizer steps"
    plot_lr_schedule(dst, curves.groups, steps_per_epoch=curves.steps_per_epoch, warmup_steps=curves.warmup_steps,
                     title=title, note=curves.note)
    click.echo(f"wrote {dst}", err=True)


def _render_text(plan, modules: bool) -> None:
    from rich.console import Console
    from rich.markup import escape

    console = Console(highlight=False, soft_wrap=True)

    def say(text: str, style: str | None = None) -> None:
        # config values (paths, args) are printed literally: '[/x]' in a path must not be read as markup
        console.print(escape(text), style=style)

    s = plan.steps
    say(f"{plan.source} ({plan.dialect}) -> {plan.family}, {plan.network_module}, base "
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
    _render_run(plan, say)
    if plan.engine_options:
        say("implemented by the engine (no PEFT field)", "bold")
        for k, v in plan.engine_options.items():
            why = v.get("why") if isinstance(v, dict) else None
            val = {kk: vv for kk, vv in v.items() if kk != "why"} if isinstance(v, dict) else v
            say(f"  {k}: {val}" + (f" - {why}" if why else ""))
    if plan.ignored:
        say("set but not run by the engine", "bold yellow")
        for u in plan.ignored:
            say(f"  {u.option}: {u.why}")
    if plan.unsupported:
        say("unsupported", "bold red")
        for u in plan.unsupported:
            say(f"  {u.option}: {u.why}" + ("  [train refuses this]" if u.refused else ""))
    for n in plan.notes:
        say(f"note: {n}")


def _render_run(plan, say) -> None:
    """Model, optimizer, schedule, precision, data and outputs: one line each."""
    o, s, m, p, d, out = plan.optimizer, plan.scheduler, plan.model, plan.precision, plan.dataset, plan.outputs
    if m is not None:
        say("model", "bold")
        say(f"  {m.family}, attention {m.attention or 'default'}, clip_skip {m.clip_skip or 'off'}, "
            f"max_token_length {m.max_token_length or 75}"
            + (", gradient checkpointing" if m.gradient_checkpointing else "")
            + (", cached text-encoder outputs" + (" (disk)" if m.cache_text_encoder_outputs_to_disk else "")
               if m.cache_text_encoder_outputs else "") + (", highvram" if m.highvram else ""))
        say(f"  precision {p.mixed_precision}" + (", full_bf16" if p.full_bf16 else "")
            + (", full_fp16" if p.full_fp16 else "")
            + ((", fp8 UNet" if p.fp8_base_unet else ", fp8 UNet and text encoders") if p.fp8_base else "")
            + f", saved as {p.save_precision or 'trained'}; seed "
            + (_n(plan.seed) if plan.seed is not None else "drawn at run time"))
    if plan.flux is not None:
        _render_flux(plan.flux, say)
    say("optimizer", "bold")
    if o.package is None:
        pkg = ""
    elif o.package_installed:
        pkg = f" (package {o.package}: installed)"
    else:
        pkg = f" (package {o.package}: NOT installed - pip install {o.package})"
    args = ", ".join(f"{k}={v!r}" for k, v in o.call_kwargs.items())
    say(f"  {o.name} = {o.class_path or 'not supported'}({args}){pkg}; lr {_n(o.learning_rate)}, "
        f"max_grad_norm {_n(o.max_grad_norm)}" + (" [from " + o.source + "]" if o.source not in ("optimizer_type",
                                                                                                 "default") else ""))
    say(f"  schedule {s.name}" + (" (schedule-free: constant)" if o.schedule_free else "")
        + f", warmup {_n(s.lr_warmup_steps)}, decay {_n(s.lr_decay_steps)}, cycles {_n(s.num_cycles)}, power "
        f"{_n(s.power)}" + (f", args {s.args}" if s.args else ""))
    say("data", "bold")
    say(f"  {len(d.datasets)} dataset(s), {sum(len(x.subsets) for x in d.datasets)} subset(s); loader lag of "
        f"{d.loader_workers} worker(s)" + (" (persistent)" if d.persistent_workers else "")
        + (", latents cached" + (" to disk" if d.cache_latents_to_disk else "") if d.cache_latents else ""))
    say("outputs", "bold")
    every = [f"every {out.save_every_n_epochs} epochs" if out.save_every_n_epochs else "",
             f"every {out.save_every_n_steps} steps" if out.save_every_n_steps else ""]
    say(f"  {out.output_dir}/{out.output_name or 'last'}{out.extension}"
        + (", saves " + " and ".join(e for e in every if e) if any(every) else "")
        + (", state folders" if out.save_state else "") + (", no metadata" if out.no_metadata else "")
        + f", loss.png; logs {_logs(out)}")
    _render_samples(plan, say)


def _logs(out) -> str:
    tracker = out.log_with or ("tensorboard" if out.logging_dir else None)
    if tracker is None:
        return "none"
    return tracker + (f" in {out.logging_dir}/{out.log_prefix or ''}<timestamp>" if out.logging_dir else "")


def _render_samples(plan, say) -> None:
    """Sample images and validation: one block each when configured."""
    sp, v = plan.samples, plan.validation
    if sp.prompt_file or sp.enabled:
        when = [w for w in (("before training" if sp.at_first else ""),
                            (f"every {sp.every_n_epochs} epochs" if sp.every_n_epochs else ""),
                            (f"every {sp.every_n_steps} steps" if sp.every_n_steps and not sp.every_n_epochs else ""))
                if w]
        say("sample images", "bold")
        sampler = "flow-matching Euler (FLUX.1)" if sp.resolved else sp.sampler
        say(f"  {len(sp.prompts)} prompt(s) from {sp.prompt_file}, {' and '.join(when) or 'never'}, sampler "
            f"{sampler}, into {sp.output_dir}")
        for i, p in enumerate(sp.prompts[:10]):
            if sp.resolved:  # FLUX.1: the settings the sampler runs (defaults applied, sizes rounded)
                r = sp.resolved[i]
                extra = (f"{r['width']}x{r['height']}, {r['sample_steps']} steps, guidance {r['guidance_scale']}, "
                         f"CFG {r['cfg_scale']}" + (f", negative {r['negative_prompt']!r}"
                                                   if r["negative_prompt"] is not None else "")
                         + f", seed {r['seed'] if r['seed'] is not None else 'random'}, mu {r['mu']:.4f}")
            else:
                extra = ", ".join(f"{k} {v}" for k, v in p.to_json().items() if k not in ("index", "prompt"))
            say(f"    {p.index:02d}: {p.prompt}" + (f"  ({extra})" if extra else ""))
        if len(sp.prompts) > 10:
            say(f"    ... {len(sp.prompts) - 10} more")
    if v.enabled:
        when = [f"every {v.every_n_steps} steps" if v.every_n_steps else "",
                f"every {v.every_n_epochs} epochs" if v.every_n_epochs else "every epoch"]
        say("validation", "bold")
        say(f"  split {', '.join(str(x) for x in v.splits)}; {' and '.join(w for w in when if w)}, at most "
            f"{_n(v.max_steps) if v.max_steps is not None else 'all'} batches, "
            + (f"timesteps {v.timesteps}" if v.fixed_timesteps else
               f"{len(v.timesteps)} runs each with a timestep_sampling draw (FLUX.1 ignores the fixed timesteps)")
            + f", seed {v.seed if v.seed is not None else 'the run seed'}")


def _render_flux(fp, say) -> None:
    """FLUX.1: the variant and where it was read, the model files, the flow-matching options, memory options."""
    say("flux", "bold")
    say(f"  {fp.variant or 'variant unknown until the model is loaded'} ({fp.topology_from}): {fp.double_blocks} "
        f"double / {fp.single_blocks} single blocks; T5 tokens {_n(fp.t5xxl_max_token_length)}"
        + "".join(f", {k} {getattr(fp, k)}" for k in ("ae", "clip_l", "t5xxl") if getattr(fp, k)))
    o = fp.options
    say(f"  timesteps {o['timestep_sampling']} (shift {o['discrete_flow_shift']}, sigmoid_scale {o['sigmoid_scale']}), "
        f"weighting {o['weighting_scheme']}, prediction {o['model_prediction_type']}, guidance "
        f"{o['guidance_scale']}, loss {o['loss_type']}, T5 mask {o['apply_t5_attn_mask']}")
    memory = [name for name, on in (("fp8_base", fp.fp8_base), ("fp8_base_unet", fp.fp8_base_unet),
                                     ("cpu_offload_checkpointing", fp.cpu_offload_checkpointing),
                                     ("cache_text_encoder_outputs", fp.cache_text_encoder_outputs),
                                     ("... to disk", fp.cache_text_encoder_outputs_to_disk)) if on]
    if fp.blocks_to_swap:
        memory.append(f"blocks_to_swap {fp.blocks_to_swap}")
    say(f"  modules {fp.modules}" + (", split_qkv" if fp.split_qkv else "") + (", train_t5xxl" if fp.train_t5xxl
                                                                                 else "")
        + ("; memory: " + ", ".join(memory) if memory else ""))


def _n(v) -> str:
    return "unknown" if v is None else str(v)
