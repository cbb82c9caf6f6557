"""The training loop: accelerate + diffusers + PEFT, with sd-scripts' semantics.

``run_training(cfg, ...)`` takes a :class:`~lora_compat.config.model.CanonicalConfig` (any dialect, read by
the spine), resolves it with :func:`lora_compat.plan.make_plan`, and trains:

* models (:mod:`.models`), LoRA/LoCon through PEFT with sd-scripts' module set (:mod:`.network`);
* noise, timesteps, targets and loss weights (:mod:`.noise`, :mod:`lora_compat.semantics`);
* parameter groups in sd-scripts' order (text encoders first, LoRA+ / block LR groups, lr 0 groups dropped),
  optimizers by a fixed name map (:mod:`.optimizers`), LR via ``semantics.lr_lambda`` in a ``LambdaLR``;
* epochs/steps per §4.7, saves every N epochs/steps with keep-last-N, final save, state + resume;
  Ctrl-C saves a state folder and returns (:mod:`.state`).

It is a plain accelerate program: ``accelerate launch -m lora_compat train ...`` distributes it.
"""

from __future__ import annotations

import contextlib
import math
import os
import pickle
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from lora_compat.errors import UserError
from lora_compat.train import state as st


@dataclass
class TrainResult:
    """What a run produced."""

    output_dir: Path
    final_model: Path | None
    saved_models: list[Path]
    global_step: int
    epochs: int
    losses: list[float]
    interrupted: bool = False
    state_dir: Path | None = None
    peft_dir: Path | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    max_train_steps: int = 0
    total_batch_size: int = 0
    process_index: int = 0
    num_processes: int = 1
    weights_sha256: str = ""
    lrs: list[list[float]] = field(default_factory=list)   # per optimizer step: each group's LR used


def _float_or_none(v: Any) -> float | None:
    return None if v is None else float(v)


def run_training(cfg: Any, *, base_model: str | None = None, train_data: str | None = None,
                 output_dir: str | None = None, max_steps: int | None = None, show_progress: bool = True,
                 save_peft: bool = False, on_step: Callable[[int, float], None] | None = None,
                 log: Callable[[str], None] | None = None, resume: str | None = None) -> TrainResult:
    """Train the LoRA described by ``cfg``; returns a :class:`TrainResult`.

    ``base_model`` / ``train_data`` / ``output_dir`` / ``max_steps`` override the config (CLI flags).
    ``resume`` is a state folder to continue from; it must come from the caller (``--resume``), never from the
    config: state folders hold pickles that accelerate loads with ``weights_only=False``, and a config must
    never make the tool run code. ``on_step(global_step, loss)`` is called after every optimizer step.
    """
    try:
        return _train(cfg, base_model=base_model, train_data=train_data, output_dir=output_dir, max_steps=max_steps,
                      show_progress=show_progress, save_peft=save_peft, on_step=on_step, log=log, resume=resume)
    finally:
        # accelerate keeps process-global singletons; a later run in the same process (tests, demo, notebooks)
        # may use another mixed precision / accumulation, so forget them. The process group stays up.
        from accelerate.state import AcceleratorState, GradientState

        AcceleratorState._reset_state()
        GradientState._reset_state()


def _train(cfg: Any, *, base_model: str | None, train_data: str | None, output_dir: str | None,
           max_steps: int | None, show_progress: bool, save_peft: bool,
           on_step: Callable[[int, float], None] | None, log: Callable[[str], None] | None,
           resume: str | None) -> TrainResult:
    import torch
    from accelerate import Accelerator
    from accelerate.utils import set_seed

    from lora_compat.plan import block_index, make_plan, parse_network_args
    from lora_compat.semantics import lr_lambda
    from lora_compat.train import models as mdl
    from lora_compat.train import network as netmod
    from lora_compat.train.noise import NoiseSettings
    from lora_compat.train.optimizers import build_optimizer, is_schedule_free
    from lora_compat.train.saving import kohya_state_dict, save_kohya
    from lora_compat.train.saving import save_peft as write_peft

    say = log or (lambda msg: None)
    if cfg.get("resume") and not resume:
        raise UserError(f"resume {cfg.get('resume')!r} comes from the config file; state folders hold pickles, so "
                        "lora-compat resumes only when asked on the command line: pass --resume DIR", key="resume")
    if getattr(cfg, "invalid", None):
        bad = cfg.invalid[0]
        raise UserError(f"{bad.option}: {bad.reason}", file=bad.origin.file, line=bad.origin.line, key=bad.origin.key)
    get = cfg.effective
    arch = cfg.arch()
    plan = make_plan(cfg)
    kinds = {a.kind for a in plan.adapters}
    if kinds - {"lora", "locon", "loha", "lokr"}:
        raise UserError(f"network_module {plan.network_module!r} ({', '.join(sorted(kinds))}) is not trainable by "
                        "lora-compat: only LoRA / LoCon / LoHa / LoKr are", key="network_module")
    if get("network_weights") and kinds & {"loha", "lokr"}:
        raise UserError("network_weights: starting a LoHa / LoKr network from a file is not supported",
                        key="network_weights")
    for u in plan.unsupported:
        say(f"warning: {u.option}: {u.why}")
    if not plan.adapters:
        raise UserError("nothing to train: network_train_unet_only and network_train_text_encoder_only "
                        "exclude every part", key="network_train_unet_only")

    grad_acc = int(get("gradient_accumulation_steps") or 1)
    mixed = get("mixed_precision") or "no"
    if mixed == "fp16" and not torch.cuda.is_available():
        # accelerate refuses fp16 autocast without a GPU; fp32 gives the same result, only slower.
        say("warning: mixed_precision fp16 needs a GPU; training in fp32 on this machine")
        mixed = "no"
    if get("max_token_length") not in (None, 75, 150, 225):
        raise UserError(f"max_token_length {get('max_token_length')!r}: sd-scripts accepts 150 or 225 (leave it out "
                        "for 75)", key="max_token_length")
    for name, why in NOT_IMPLEMENTED.items():
        if get(name):
            say(f"warning: {name} is set but ignored: {why}")
    logging_dir = get("logging_dir")
    log_with = None
    if logging_dir:
        try:
            import tensorboard  # noqa: F401

            log_with = "tensorboard"
        except ImportError:
            say("warning: logging_dir is set but tensorboard is not installed; no logs written")
    # `accelerate launch --multi_gpu --num_processes N` on a machine without GPUs: accelerate only picks its
    # multi-CPU (gloo) mode when told cpu=True, so say it for multi-process launches without CUDA.
    multi_cpu = not torch.cuda.is_available() and int(os.environ.get("WORLD_SIZE", "1")) > 1
    accelerator = Accelerator(gradient_accumulation_steps=grad_acc, mixed_precision=mixed, log_with=log_with,
                              project_dir=str(logging_dir) if logging_dir else None, cpu=multi_cpu)
    seed = get("seed")
    if seed is None and resume:
        seed = st.read_train_state(Path(str(resume))).get("seed")
    seed = int(seed) if seed is not None else random.randint(0, 2 ** 32 - 1)
    set_seed(seed)
    out_dir = Path(output_dir or get("output_dir") or ".")
    output_name = get("output_name")
    ext = "." + str(get("save_model_as") or "safetensors")
    if ext not in (".safetensors", ".ckpt", ".pt"):
        raise UserError(f"save_model_as {ext[1:]!r} is not one of safetensors, ckpt, pt", key="save_model_as")
    if accelerator.is_main_process:
        out_dir.mkdir(parents=True, exist_ok=True)

    # ---- models ------------------------------------------------------------------------------------------
    v_param = bool(get("v_parameterization"))
    comps = mdl.load_models(str(base_model or get("pretrained_model_name_or_path") or ""), arch,
                            v_parameterization=v_param, seed=seed, tokenizer_dir=get("tokenizer_cache_dir"))
    if get("zero_terminal_snr"):
        from lora_compat.train.noise import make_noise_scheduler

        comps.noise_scheduler = make_noise_scheduler(zero_terminal_snr=True)
    sched = comps.noise_scheduler
    unet, vae = comps.unet, comps.vae
    tes = comps.text_encoders
    for m in (unet, vae, *tes):
        m.requires_grad_(False)
    attn = "sdpa" if (get("xformers") or get("mem_eff_attn") or get("sdpa")) else None
    mdl.set_attention(unet, attn)

    part_models = {"unet": unet, "text_encoder": tes[0]}
    if len(tes) > 1:
        part_models["text_encoder_2"] = tes[1]
    nets: list[netmod.PartNetwork] = []
    net_args = parse_network_args(get("network_args"))
    for adapter in plan.adapters:
        model = part_models[adapter.part]
        if adapter.peft_kwargs.get("target_modules"):
            targets = netmod.targets_from_plan(adapter, arch, model)
        else:
            dim, alpha = adapter.peft_kwargs.get("r", 4), adapter.peft_kwargs.get("lora_alpha", 1)
            conv = net_args.get("conv_dim")
            targets = netmod.targets_from_tables(arch, adapter.part, model, dim, alpha,
                                                 int(conv) if conv else None,
                                                 float(net_args["conv_alpha"]) if "conv_alpha" in net_args else None)
        netmod.inject(model, targets, adapter.kind, adapter.peft_kwargs)
        nets.append(netmod.PartNetwork(adapter.part, model, targets, adapter.lr, adapter.kind))
    eo = plan.engine_options
    if mixed in ("fp16", "bf16"):
        # sd-scripts keeps the frozen UNet / text encoders in the mixed-precision dtype (memory) and the
        # network in float32 (unless full_bf16); the VAE stays float32 here.
        half = torch.float16 if mixed == "fp16" else torch.bfloat16
        with _quiet_diffusers():  # diffusers warns about any .to(dtype) on a model, even with nothing to keep
            for m in (unet, *tes):
                m.to(half)
        for net in nets:
            netmod.cast_adapters(net, torch.float32)
    if get("full_bf16"):
        # sd-scripts trains the network itself in bf16 (and saves bf16 unless save_precision says otherwise)
        if mixed != "bf16":
            raise UserError("full_bf16 requires mixed_precision = \"bf16\" (sd-scripts asserts this)",
                            key="full_bf16")
        for net in nets:
            netmod.cast_adapters(net, torch.bfloat16)
    if get("network_weights"):
        _load_network_weights(str(get("network_weights")), nets, say)
    for net in nets:
        netmod.install_kohya_dropouts(net, (eo.get("network_dropout") or {}).get("p"),
                                      (eo.get("rank_dropout") or {}).get("p"),
                                      (eo.get("module_dropout") or {}).get("p"))
    train_te = any(n.part != "unet" and n.lr for n in nets)
    if get("gradient_checkpointing"):
        unet.enable_gradient_checkpointing()
        if train_te:
            for te in tes:
                # transformers 5 renamed it; the old name still works but warns
                (getattr(te, "activation_checkpointing_enable", None) or te.gradient_checkpointing_enable)()
    clip_skip = get("clip_skip")
    max_tokens = get("max_token_length")

    # ---- data --------------------------------------------------------------------------------------------
    from lora_compat.train.dataset import build_dataset

    batch_size = int(get("train_batch_size") or 1)
    dataset = build_dataset(cfg, train_data, seed)
    if get("cache_latents") or get("cache_latents_to_disk"):
        vae.to(accelerator.device)
        with torch.no_grad():
            dataset.cache_latents(lambda x: vae.encode(x.to(accelerator.device, dtype=vae.dtype)).latent_dist.sample(),
                                  to_disk=bool(get("cache_latents_to_disk")),
                                  vae_batch_size=int(get("vae_batch_size") or 1))
    n_batches_total = len(dataset)
    te_cache: dict[str, Any] | None = None
    if get("cache_text_encoder_outputs"):
        # sdxl_train_network.py: only for SDXL, with frozen text encoders and captions that never change;
        # captions are then the raw file text (no prefix/suffix, wildcards, dropout: reference §4.4.5).
        if arch != "sdxl":
            say("warning: cache_text_encoder_outputs is an sdxl_train_network.py option; ignored for " + arch)
        else:
            if train_te:
                raise UserError("cache_text_encoder_outputs needs network_train_unet_only (sd-scripts asserts "
                                "this): the text encoders cannot be trained from cached outputs",
                                key="cache_text_encoder_outputs")
            if not dataset.text_encoder_output_cacheable:
                raise UserError("cache_text_encoder_outputs cannot be used with caption_dropout_rate, "
                                "shuffle_caption, token_warmup_step or caption_tag_dropout_rate (sd-scripts "
                                "asserts this)", key="cache_text_encoder_outputs")
            dataset.raw_captions = True
            te_cache = {}

    # ---- steps (§4.7) --------------------------------------------------------------------------------------
    nproc = accelerator.num_processes
    max_train_steps = int(get("max_train_steps") or 1600)
    if get("max_train_epochs"):
        max_train_steps = int(get("max_train_epochs")) * math.ceil(n_batches_total / nproc / grad_acc)
    if max_steps is not None:
        max_train_steps = int(max_steps)
    dataset.set_max_train_steps(max_train_steps)  # ratio token_warmup_step values resolve against it

    # ---- optimizer groups (§4.10) ------------------------------------------------------------------------
    groups = _param_groups(plan, nets, arch, block_index)
    if not groups:
        raise UserError("every parameter group has learning rate 0 or none: nothing would be trained",
                        key="learning_rate")
    from lora_compat.semantics.optimizers import effective_optimizer

    choice = effective_optimizer(get("optimizer_type"), get("optimizer_args"), use_8bit_adam=get("use_8bit_adam"),
                                 use_lion_optimizer=get("use_lion_optimizer"))
    base_lr = _float_or_none(get("learning_rate"))
    optimizer, opt_meta = build_optimizer(choice, groups, base_lr)
    if get("lr_scheduler_type"):
        # sd-scripts imports this dotted class name; a config must never choose code to import
        raise UserError(f"lr_scheduler_type {get('lr_scheduler_type')!r}: custom scheduler classes are not loaded "
                        "(a config never imports code); use one of the lr_scheduler names", key="lr_scheduler_type")
    sched_name = str(get("lr_scheduler") or "constant")
    unet_lr_meta = _float_or_none(get("unet_lr"))
    relative_step = choice.relative_step
    if relative_step:
        # sd-scripts: Adafactor's relative_step discards every configured LR and forces the scheduler to
        # adafactor:<learning_rate> (AdafactorSchedule); warmup is then a ValueError (§4.10, §4.11).
        from transformers.optimization import AdafactorSchedule

        if _warmup_steps(get("lr_warmup_steps"), max_train_steps):
            raise UserError("Adafactor with relative_step=True forces the adafactor scheduler, which takes no "
                            "warmup (sd-scripts raises ValueError)", key="lr_warmup_steps")
        sched_name = f"adafactor:{base_lr}"
        lr_scheduler = AdafactorSchedule(optimizer, initial_lr=base_lr or 0.0)
        base_lr = unet_lr_meta = None
    else:
        if is_schedule_free(choice):
            factor = (lambda t: 1.0)  # noqa: E731  schedule-free: a dummy scheduler, LR constant
        else:
            try:
                factor = lr_lambda(sched_name, max_train_steps, lr_warmup_steps=get("lr_warmup_steps"),
                                   lr_decay_steps=get("lr_decay_steps"),
                                   lr_scheduler_num_cycles=get("lr_scheduler_num_cycles"),
                                   lr_scheduler_power=get("lr_scheduler_power"),
                                   lr_scheduler_timescale=get("lr_scheduler_timescale"),
                                   lr_scheduler_min_lr_ratio=get("lr_scheduler_min_lr_ratio"),
                                   lr_scheduler_args=_kv(get("lr_scheduler_args")),
                                   learning_rate=base_lr if base_lr is not None else 2e-6, num_processes=nproc)
            except (ValueError, TypeError, KeyError) as exc:
                raise UserError(f"lr_scheduler {sched_name!r}: {exc}", key="lr_scheduler") from None
        lr_scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)

    # ---- accelerate ----------------------------------------------------------------------------------------
    trained = [unet] if any(n.part == "unet" for n in nets) else []
    trained += [n.model for n in nets if n.part != "unet"]
    # No DataLoader: batches are whole buckets built by the dataset, fetched in order by index and sharded
    # by hand. A prepared DataLoader would prefetch one batch (consuming the dataset's RNG before a state
    # save) and call dataset.set_epoch with its own counter, both of which break exact resume.
    prepared = accelerator.prepare(*trained, optimizer, lr_scheduler)
    wrapped = list(prepared[:len(trained)])
    optimizer, lr_scheduler = prepared[len(trained):]
    accelerator.register_for_checkpointing(_DatasetState(dataset))
    wmap = {id(m): w for m, w in zip(trained, wrapped)}
    unet_run = wmap.get(id(unet), unet)
    te_run = [wmap.get(id(te), te) for te in tes]
    dev = accelerator.device
    with _quiet_diffusers():
        vae.to(dev)
        unet.to(dev)
        for te in tes:
            te.to(dev)
    unet.train()
    for n in nets:
        n.model.train()
    for te in tes:
        if not any(n.model is te for n in nets):
            te.eval()
    vae.eval()

    per_proc_batches = math.ceil(n_batches_total / nproc)
    updates_per_epoch = math.ceil(per_proc_batches / grad_acc)
    num_epochs = math.ceil(max_train_steps / updates_per_epoch)
    ns = NoiseSettings.from_options(get)
    ns.v_parameterization = v_param
    scaling = vae.config.scaling_factor
    params = [p for g in groups for p in g["params"]]

    # ---- metadata ------------------------------------------------------------------------------------------
    from lora_compat.train.metadata import RunFacts, describe_datasets, modelspec, save_metadata, training_metadata

    te_lr = next((n.lr for n in nets if n.part != "unet"), None)
    facts = RunFacts(arch=arch, v_parameterization=v_param, num_train_images=dataset.num_train_images,
                     num_reg_images=dataset.num_reg_images, num_batches_per_epoch=per_proc_batches,
                     num_epochs=num_epochs, max_train_steps=max_train_steps, num_processes=nproc,
                     optimizer=opt_meta, seed=seed, lr_scheduler=sched_name, learning_rate=base_lr,
                     unet_lr=unet_lr_meta, text_encoder_lr=None if relative_step else te_lr,
                     dataset_dirs=dataset.dataset_dirs, tag_frequency=dataset.tag_frequency)
    datasets_json, facts.reg_dataset_dirs, facts.bucket_info = describe_datasets(dataset)
    if get("dataset_config") and train_data is None:
        facts.datasets_json = datasets_json
    base_meta = training_metadata(get, facts)
    save_precision = get("save_precision")
    saved: list[Path] = []

    def save_model(name: str, epoch: int, step: int) -> Path:
        accelerator.wait_for_everyone()
        path = out_dir / name
        if accelerator.is_main_process:
            sd = kohya_state_dict(nets, save_precision)
            md = save_metadata(base_meta, modelspec(get, arch, v_param), epoch, step, bool(get("no_metadata")))
            save_kohya(path, sd, md if ext == ".safetensors" else None)
            saved.append(path)
        return path

    # ---- resume ----------------------------------------------------------------------------------------------
    global_step, first_epoch, skip_batches = 0, 0, 0
    if resume:
        rdir = Path(str(resume))
        if not rdir.is_dir():
            raise UserError(f"resume folder {str(rdir)!r} not found", key="resume")
        accelerator.load_state(str(rdir))
        ts = st.read_train_state(rdir)
        global_step = ts.get("current_step", 0)
        first_epoch = global_step // updates_per_epoch
        skip_batches = (global_step % updates_per_epoch) * grad_acc
        say(f"resumed from {rdir} at step {global_step}")

    if log_with:
        accelerator.init_trackers("network_train" if not get("log_tracker_name") else str(get("log_tracker_name")))

    losses: list[float] = []
    lrs: list[list[float]] = []
    interrupted = False
    state_dir: Path | None = None
    progress = _Progress(show_progress and accelerator.is_local_main_process, max_train_steps, global_step)
    save_n_steps = int(get("save_every_n_steps") or 0)
    save_n_epochs = int(get("save_every_n_epochs") or 0)
    save_state = bool(get("save_state"))
    final_epoch = first_epoch
    with st.InterruptFlag() as stop, progress:
        for epoch in range(first_epoch, num_epochs):
            final_epoch = epoch
            local = _shard(n_batches_total, accelerator.num_processes, accelerator.process_index)
            start, skip_batches = skip_batches, 0
            if not start:
                # a mid-epoch resume restored the dataset as it was inside this epoch (worker views, lag):
                # announcing the epoch again would reset them
                dataset.set_epoch(epoch + 1)
            for j in range(start, len(local)):
                dataset.set_current_step(global_step)
                batch = dataset[local[j]]
                # sd-scripts/accelerate: sync every grad_acc micro-batches and at the end of each epoch.
                sync = (j + 1) % grad_acc == 0 or j + 1 == len(local)
                accelerator.gradient_state._set_sync_gradients(sync)
                with contextlib.ExitStack() as no_sync:
                    if not sync:
                        for m in wrapped:
                            no_sync.enter_context(accelerator.no_sync(m))
                    loss = _forward_loss(batch, arch, vae, scaling, te_run, unet_run, comps.tokenizers,
                                         clip_skip, sched, ns, dev, accelerator, train_te, max_tokens, te_cache)
                    accelerator.backward(loss)
                if sync:
                    if get("max_grad_norm"):
                        accelerator.clip_grad_norm_(params, float(get("max_grad_norm")))
                    lrs.append([g["lr"] for g in optimizer.param_groups])  # the LR this step uses
                    optimizer.step()
                    lr_scheduler.step()
                    optimizer.zero_grad(set_to_none=True)
                if "scale_weight_norms" in eo:
                    netmod.apply_max_norm(nets, eo["scale_weight_norms"]["max_norm"])
                if not sync:
                    continue
                global_step += 1
                lv = float(accelerator.gather(loss.detach().reshape(1)).mean())
                losses.append(lv)
                progress.advance(lv, lr_scheduler.get_last_lr()[0])
                if log_with:
                    accelerator.log({"loss/current": lv, "lr/group0": lr_scheduler.get_last_lr()[0]}, step=global_step)
                if on_step:
                    on_step(global_step, lv)
                if save_n_steps and global_step % save_n_steps == 0:  # also on the last step, as sd-scripts
                    name = st.step_name(output_name, global_step, ext)
                    save_model(name, epoch, global_step)
                    if save_state:
                        st.save_train_state(accelerator, out_dir / st.state_dir_name(name, ext), epoch, global_step,
                                            seed=seed)
                    old = st.removable_step(global_step, save_n_steps, get("save_last_n_steps"))
                    if old and accelerator.is_main_process:
                        oname = st.step_name(output_name, old, ext)
                        st.remove_quietly(out_dir / oname)
                        st.remove_quietly(out_dir / st.state_dir_name(oname, ext))
                if _any_process(accelerator, stop.requested) and global_step < max_train_steps:
                    interrupted = True
                    # at the last batch of an epoch, let the epoch-end saves run first (a resumed run starts
                    # with the next epoch and would never make them)
                    if j + 1 < len(local):
                        break
                if global_step >= max_train_steps:
                    break
            if interrupted and j + 1 < len(local):
                state_dir = st.save_train_state(
                    accelerator, out_dir / st.state_dir_name(st.step_name(output_name, global_step, ext), ext),
                    epoch, global_step, seed=seed)
                break
            if save_n_epochs and (epoch + 1) % save_n_epochs == 0 and epoch + 1 < num_epochs:
                name = st.epoch_name(output_name, epoch + 1, ext)
                save_model(name, epoch + 1, global_step)
                if save_state:
                    st.save_train_state(accelerator, out_dir / st.state_dir_name(name, ext), epoch + 1, global_step,
                                        seed=seed)
                old = st.removable_epoch(epoch + 1, save_n_epochs, get("save_last_n_epochs"))
                if old and accelerator.is_main_process:
                    oname = st.epoch_name(output_name, old, ext)
                    st.remove_quietly(out_dir / oname)
                    st.remove_quietly(out_dir / st.state_dir_name(oname, ext))
            if interrupted:
                state_dir = st.save_train_state(
                    accelerator, out_dir / st.state_dir_name(st.step_name(output_name, global_step, ext), ext),
                    epoch + 1, global_step, seed=seed)
                break
            if global_step >= max_train_steps:
                break

    final: Path | None = None
    peft_dir: Path | None = None
    if not interrupted:
        final = save_model(st.last_name(output_name, ext), num_epochs, global_step)
        if save_state or get("save_state_on_train_end"):
            state_dir = st.save_train_state(accelerator, out_dir / st.state_dir_name(st.last_name(output_name, ext), ext),
                                            num_epochs, global_step, seed=seed)
        if save_peft and accelerator.is_main_process:
            peft_dir = write_peft(out_dir / ((output_name or "last") + "-peft"), nets)
    if log_with:
        accelerator.end_training()
    accelerator.wait_for_everyone()
    return TrainResult(out_dir, final, saved, global_step, final_epoch + 1, losses, interrupted, state_dir, peft_dir,
                       base_meta, max_train_steps, batch_size * nproc * grad_acc, accelerator.process_index,
                       nproc, _digest(kohya_state_dict(nets, None)), lrs)


def _any_process(accelerator: Any, flag: bool) -> bool:
    """True when any process got Ctrl-C (all ranks must stop at the same step)."""
    if accelerator.num_processes == 1:
        return flag
    import torch

    t = torch.tensor([1.0 if flag else 0.0], device=accelerator.device)
    return bool(accelerator.reduce(t, reduction="sum").item() > 0)


@contextlib.contextmanager
def _quiet_diffusers() -> Any:
    """Silence diffusers' logger (warnings only) for the duration of the block, then restore its level."""
    from diffusers.utils import logging as dlog

    previous = dlog.get_verbosity()
    dlog.set_verbosity_error()
    try:
        yield
    finally:
        dlog.set_verbosity(previous)


def _digest(state: dict[str, Any]) -> str:
    """SHA-256 over every adapter tensor (sorted by key): equal on all ranks when they are in sync."""
    import hashlib

    import torch

    h = hashlib.sha256()
    for k in sorted(state):
        h.update(k.encode())
        h.update(state[k].contiguous().view(-1).view(dtype=torch.uint8).numpy().tobytes())
    return h.hexdigest()


# Options whose effect this engine does not reproduce; a run with them set warns instead of failing.
NOT_IMPLEMENTED: dict[str, str] = {
    "sample_prompts": "no sample images are generated during training",
    "sample_every_n_steps": "no sample images are generated during training",
    "sample_every_n_epochs": "no sample images are generated during training",
    "validation_split": "no validation loss is computed (the training split is still applied)",
    "full_fp16": "LoRA weights stay float32 (autocast follows mixed_precision); full_bf16 is supported",
    "fp8_base": "the base model keeps its dtype",
    "weighted_captions": "caption weights (a:1.2) are read as plain text",
    "masked_loss": "conditioning-image masks are not read (alpha-mask subsets still mask the loss)",
    "deepspeed": "DeepSpeed is not set up by lora-compat; use accelerate's own config",
    "huggingface_repo_id": "nothing is uploaded",
    "dim_from_weights": "ranks come from the config, not from network_weights",
}


def _load_network_weights(path: str, nets: list[Any], say: Callable[[str], None]) -> None:
    """``network_weights``: start from a kohya LoRA file, loaded like sd-scripts (strict=False: unknown or
    missing modules are reported, a shape mismatch is an error; the file's alpha does not change the scale)."""
    import torch
    from safetensors.torch import load_file

    from lora_compat.train.network import ADAPTER, lora_layers

    if not path.endswith(".safetensors"):
        raise UserError(f"network_weights {path!r}: only .safetensors files are read (pickles can run code)",
                        key="network_weights")
    try:
        sd = load_file(path)
    except (OSError, ValueError) as exc:
        raise UserError(f"network_weights {path!r}: {exc}", key="network_weights") from None
    used = set()
    for net in nets:
        for t, layer in lora_layers(net):
            for suffix, param in (("lora_down.weight", layer.lora_A[ADAPTER].weight),
                                  ("lora_up.weight", layer.lora_B[ADAPTER].weight)):
                key = f"{t.kohya_name}.{suffix}"
                if key not in sd:
                    continue
                if tuple(sd[key].shape) != tuple(param.shape):
                    raise UserError(f"network_weights {path!r}: {key} has shape {list(sd[key].shape)}, the "
                                    f"network needs {list(param.shape)}", key="network_weights")
                with torch.no_grad():
                    param.copy_(sd[key].to(param.dtype))
                used.add(key)
    weights = {k for k in sd if not k.endswith(".alpha")}
    say(f"network_weights: loaded {len(used)} tensors from {path}"
        + (f"; {len(weights - used)} unused" if weights - used else ""))


def _warmup_steps(value: Any, max_train_steps: int) -> int:
    """Warmup steps as sd-scripts computes them (a float is a ratio of the total)."""
    from lora_compat.semantics import warmup_steps

    return warmup_steps(value, max_train_steps)


def _shard(n: int, world: int, rank: int) -> list[int]:
    """This process's batch indices: every ``world``-th batch, padded from the start so that every process runs
    the same number of steps (as accelerate's even_batches does)."""
    idx = list(range(n))
    per = math.ceil(n / world)
    idx += idx[: per * world - n]
    return idx[rank::world]


class _DatasetState:
    """Saves/restores the dataset's random streams with accelerate's state, so a resumed run fetches exactly
    the batches (captions, flips, crops) an uninterrupted one would."""

    _FIELDS = ("announced_epoch", "announced_step", "_views", "_no_lag_view", "_perm")

    def __init__(self, dataset: Any) -> None:
        self.dataset = dataset

    def state_dict(self) -> dict[str, Any]:
        if hasattr(self.dataset, "state_dict"):
            return {"dataset": self.dataset.state_dict()}
        return {"pickle": pickle.dumps({f: getattr(self.dataset, f) for f in self._FIELDS if hasattr(self.dataset, f)})}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if "dataset" in state:
            self.dataset.load_state_dict(state["dataset"])
            return
        # Written by state_dict above; only ever read from a folder the user named with --resume.
        for k, v in pickle.loads(state["pickle"]).items():
            setattr(self.dataset, k, v)


def _kv(value: Any) -> dict[str, Any] | None:
    from lora_compat.semantics.args import literal_args

    if not value:
        return None
    args, problems = literal_args(value)
    if problems:
        raise UserError(f"lr_scheduler_args item {problems[0].item!r}: {problems[0].reason}", key="lr_scheduler_args")
    return args


def _param_groups(plan: Any, nets: list[Any], arch: str, block_index: Callable[[str, bool], int]) -> list[dict[str, Any]]:
    """Optimizer groups from the plan's group list (§4.10): TE groups first, LoRA+ groups hold lora_B."""
    from lora_compat.train.network import layer_params, lora_layers

    groups = []
    for g in plan.param_groups:
        if not g.lr:
            continue
        params = []
        for net in nets:
            if (g.part == "unet") != (net.part == "unet"):
                continue
            for t, layer in lora_layers(net):
                if g.block is not None and block_index(t.kohya_name, arch == "sdxl") != g.block:
                    continue
                has_plus = any(o.lora_plus and o.part == g.part and o.block == g.block for o in plan.param_groups)
                normal, plus = layer_params(net, layer)
                if not has_plus or g.lora_plus:
                    params.extend(plus)
                if not g.lora_plus:
                    params.extend(normal)
        if params:
            groups.append({"params": params, "lr": float(g.lr)})
    return groups


def _forward_loss(batch: dict[str, Any], arch: str, vae: Any, scaling: float, te_run: list[Any], unet_run: Any,
                  tokenizers: list[Any], clip_skip: Any, sched: Any, ns: Any, dev: Any, accelerator: Any,
                  train_te: bool, max_tokens: int | None = None, te_cache: dict[str, Any] | None = None) -> Any:
    """One micro-batch: latents, prompt encoding, noise, UNet prediction, per-sample loss -> mean."""
    import torch

    from lora_compat.train import models as mdl
    from lora_compat.train.noise import noise_and_timesteps, per_sample_loss, target_for

    with torch.no_grad():
        if batch.get("latents") is not None:
            latents = batch["latents"].to(dev, dtype=torch.float32)  # cached unscaled, as sd-scripts caches
        else:
            latents = vae.encode(batch["images"].to(dev, dtype=vae.dtype)).latent_dist.sample().float()
        latents = latents * scaling
    captions = batch["captions"]
    grad_ctx = contextlib.nullcontext() if train_te else torch.no_grad()
    with accelerator.autocast(), grad_ctx:
        if arch == "sdxl" and te_cache is not None:
            # frozen encoders, fixed captions: each caption is encoded once and reused
            for cap in set(captions) - set(te_cache):
                i1 = mdl.tokenize(tokenizers[0], [cap], max_tokens).to(dev)
                i2 = mdl.tokenize(tokenizers[1], [cap], max_tokens).to(dev)
                te_cache[cap] = mdl.encode_sdxl(te_run[0], te_run[1], i1, i2)
            ctx = torch.cat([te_cache[c][0] for c in captions])
            pooled = torch.cat([te_cache[c][1] for c in captions])
        elif arch == "sdxl":
            ids1 = mdl.tokenize(tokenizers[0], captions, max_tokens).to(dev)
            ids2 = mdl.tokenize(tokenizers[1], captions, max_tokens).to(dev)
            ctx, pooled = mdl.encode_sdxl(te_run[0], te_run[1], ids1, ids2)
        else:
            ids = mdl.tokenize(tokenizers[0], captions, max_tokens).to(dev)
            ctx, pooled = mdl.encode_sd(te_run[0], ids, None if clip_skip is None else int(clip_skip)), None
    noise, noisy, timesteps = noise_and_timesteps(latents, sched, ns)
    kwargs: dict[str, Any] = {}
    if arch == "sdxl":
        time_ids = torch.tensor([mdl.sdxl_time_ids(o, c, t) for o, c, t in
                                 zip(batch["original_sizes"], batch["crop_top_lefts"], batch["target_sizes"])],
                                dtype=torch.float32, device=dev)
        kwargs["added_cond_kwargs"] = {"text_embeds": pooled, "time_ids": time_ids}
    with accelerator.autocast():
        pred = unet_run(noisy, timesteps, ctx, **kwargs).sample
    target = target_for(latents, noise, timesteps, sched, ns.v_parameterization)
    mask = None
    if batch.get("alpha_masks") is not None:
        # alpha-mask subsets mask the loss even without --masked_loss; area-resized to latent size (§4.9.3)
        m = batch["alpha_masks"].to(dev, dtype=torch.float32).unsqueeze(1)
        mask = torch.nn.functional.interpolate(m, size=latents.shape[2:], mode="area")
    weights = batch["loss_weights"].to(dev)
    return per_sample_loss(pred, target, timesteps, sched, ns, weights, mask).mean()


class _Progress:
    """A rich progress bar (or nothing) showing step, loss and LR."""

    def __init__(self, enabled: bool, total: int, start: int) -> None:
        self.enabled = enabled
        self.total = total
        self.start = start
        self._p: Any = None
        self._task: Any = None

    def __enter__(self) -> "_Progress":
        if self.enabled:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self._p = Progress(TextColumn("train"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                               TextColumn("{task.fields[info]}"), transient=False)
            self._p.__enter__()
            self._task = self._p.add_task("train", total=self.total, completed=self.start, info="")
        return self

    def advance(self, loss: float, lr: float) -> None:
        if self._p is not None:
            self._p.update(self._task, advance=1, info=f"loss {loss:.4f} lr {lr:.3g}")

    def __exit__(self, *exc: Any) -> None:
        if self._p is not None:
            self._p.__exit__(*exc)
