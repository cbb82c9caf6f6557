"""The training engine: runs a :class:`~lora_compat.plan.Plan` with accelerate + diffusers + PEFT, as sd-scripts.

``run_training(cfg, ...)`` builds the plan (:func:`training_plan`: invalid values and refusals stop there, one
line, exit 2) and runs it; ``run_plan(plan, ...)`` runs a plan. Nothing is read from the config after the plan
is made. A run is a sequence of named stages (:class:`Training`):

* ``start`` — accelerate, seed (drawn when the plan has none), output folder;
* ``load_models`` — the family's models (:mod:`lora_compat.train.family`: SD-UNet families today);
* ``build_data`` — the dataset from the plan's blueprint, latent / text-encoder caches;
* ``build_network`` — PEFT adapters with sd-scripts' module set, precision casts, kohya dropouts;
* ``resolve_steps`` — epochs and steps for this run's number of processes (the plan's on one);
* ``build_optimizer`` — parameter groups in sd-scripts' order, the optimizer, the LR schedule, accelerate;
* ``loop`` — epochs of micro-batches: loss, backward, clip, step, saves every N epochs/steps, Ctrl-C;
* ``save`` — the final model (kohya layout with sd-scripts' metadata), state, PEFT folders.

It is a plain accelerate program: ``accelerate launch -m lora_compat train ...`` distributes it.
"""

from __future__ import annotations

import contextlib
import math
import os
import random
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lora_compat.errors import UserError
from lora_compat.semantics.samples import validate_after_epoch, validate_after_step
from lora_compat.train import state as st
from lora_compat.train.trackers import (
    init_wandb_metrics,
    log_values,
    prepare_trackers,
    sample_image_logger,
    step_logs,
)


@dataclass
class TrainResult:
    """What a run produced; ``record`` is what the engine actually used (see :meth:`Training.record`)."""

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
    record: dict[str, Any] = field(default_factory=dict)
    samples: list[Path] = field(default_factory=list)      # sample images written, in order
    validation: list[tuple[int, float]] = field(default_factory=list)   # (global step, mean validation loss)
    loss_plot: Path | None = None                          # loss.png beside the outputs
    log_dir: Path | None = None                            # <logging_dir>/<log_prefix><stamp> when logging
    trackers: list[str] = field(default_factory=list)      # the trackers started (tensorboard, wandb)


@dataclass(frozen=True)
class RunOptions:
    """How to run (not what): progress bar, PEFT copies, callbacks, and a state folder to resume from."""

    show_progress: bool = True
    save_peft: bool = False
    on_step: Callable[[int, float], None] | None = None
    log: Callable[[str], None] | None = None
    resume: str | None = None


def training_plan(cfg: Any, *, base_model: str | None = None, train_data: str | None = None,
                  output_dir: str | None = None, max_steps: int | None = None) -> Any:
    """The plan ``train`` runs for ``cfg`` with its command-line overrides; an invalid value or a refused option
    is a one-line UserError here, before anything is loaded."""
    from lora_compat.config.validate import refuse_invalid
    from lora_compat.plan import RunOverrides, make_plan

    refuse_invalid(cfg)
    plan = make_plan(cfg, overrides=RunOverrides(base_model=base_model, train_data=train_data,
                                                 output_dir=output_dir, max_steps=max_steps))
    for u in plan.refusals:
        raise UserError(u.why, file=plan.source or None, key=u.option)
    steps = plan.steps
    if steps.max_train_steps is None and steps.max_train_epochs is None:
        raise UserError("the training length is unknown: the front-end derived it from image folders that cannot "
                        "be counted here (see lora-compat plan)", file=plan.source or None, key="max_train_steps")
    if steps.warmup_steps is None:
        raise UserError("the warmup is unknown: the front-end derived it from image folders that cannot be counted "
                        "here (see lora-compat plan)", file=plan.source or None, key="lr_warmup_steps")
    return plan


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
    plan = training_plan(cfg, base_model=base_model, train_data=train_data, output_dir=output_dir,
                         max_steps=max_steps)
    return run_plan(plan, RunOptions(show_progress, save_peft, on_step, log, resume))


def run_plan(plan: Any, options: RunOptions | None = None) -> TrainResult:
    """Run ``plan`` (from :func:`training_plan`)."""
    try:
        return Training(plan, options or RunOptions()).run()
    finally:
        # accelerate keeps process-global singletons; a later run in the same process (tests, demo, notebooks)
        # may use another mixed precision / accumulation, so forget them. The process group stays up. Only when
        # accelerate got imported: a Ctrl-C during its import must not start a second import here.
        state = sys.modules.get("accelerate.state")
        if state is not None and hasattr(state, "GradientState"):
            state.AcceleratorState._reset_state()
            state.GradientState._reset_state()


class Training:
    """One run of a plan, stage by stage (the order of :meth:`run`)."""

    def __init__(self, plan: Any, options: RunOptions) -> None:
        self.plan = plan
        self.opts = options
        self.say: Callable[[str], None] = options.log or (lambda msg: None)
        self.saved: list[Path] = []
        self.samples: list[Path] = []
        self.validation: list[tuple[int, float]] = []
        self.losses: list[float] = []
        self.lrs: list[list[float]] = []
        self.max_norms: list[tuple[int, float, float]] = []   # scale_weight_norms: per micro-batch
        self.global_step = 0
        self.state_dir: Path | None = None
        self.interrupted = False
        self.schedule_free = False
        self.used: dict[str, Any] = {}

    def run(self) -> TrainResult:
        self.start()
        self.load_models()
        self.build_data()
        self.build_network()
        self.resolve_steps()
        self.build_optimizer()
        self.restore()
        self.loop()
        return self.save()

    # ---- start ------------------------------------------------------------------------------------------
    def start(self) -> None:
        import torch
        from accelerate import Accelerator
        from accelerate.utils import set_seed

        from lora_compat.train.metadata import new_session_id

        plan = self.plan
        for u in plan.unsupported:
            self.say(f"warning: {u.option}: {u.why}")
        for u in plan.ignored:
            self.say(f"warning: {u.option} is set but not run by lora-compat: {u.why}")
        self.session_id = new_session_id()   # before seeding, as sd-scripts: every run gets its own
        self.started_at = time.time()
        mixed = plan.precision.mixed_precision
        if mixed == "fp16" and not torch.cuda.is_available():
            # accelerate refuses fp16 autocast without a GPU; fp32 gives the same result, only slower.
            self.say("warning: mixed_precision fp16 needs a GPU; training in fp32 on this machine")
            mixed = "no"
        self.mixed = mixed
        out = plan.outputs
        self.trackers = prepare_trackers(out)   # a missing tracker package stops here, before models load
        self.log_with = self.trackers.log_with
        # `accelerate launch --multi_gpu --num_processes N` on a machine without GPUs: accelerate only picks its
        # multi-CPU (gloo) mode when told cpu=True, so say it for multi-process launches without CUDA.
        multi_cpu = not torch.cuda.is_available() and int(os.environ.get("WORLD_SIZE", "1")) > 1
        self.accelerator = Accelerator(gradient_accumulation_steps=plan.steps.gradient_accumulation_steps,
                                       mixed_precision=mixed, log_with=self.log_with,
                                       project_dir=str(self.trackers.log_dir) if self.trackers.log_dir else None,
                                       cpu=multi_cpu)
        seed = plan.seed
        if seed is None and self.opts.resume:
            seed = st.read_train_state(Path(str(self.opts.resume))).get("seed")
        self.seed = int(seed) if seed is not None else random.randint(0, 2 ** 32 - 1)
        set_seed(self.seed)
        self.out_dir = Path(out.output_dir)
        if self.accelerator.is_main_process:
            self.out_dir.mkdir(parents=True, exist_ok=True)

    # ---- models -----------------------------------------------------------------------------------------
    def load_models(self) -> None:
        from lora_compat.train.family import family_for

        self.family = family_for(self.plan.family)
        if self.plan.samples.enabled:
            self.family.check_sampling(self.plan)  # a family without a sampler refuses before anything is loaded
        if self.plan.validation.enabled:
            self.family.check_validation(self.plan)
        self.models = self.family.load(self.plan, seed=self.seed)
        self.family.set_attention(self.models, self.plan.model.attention)

    # ---- data -------------------------------------------------------------------------------------------
    def build_data(self) -> None:
        import torch

        from lora_compat.train.dataset import build_dataset
        from lora_compat.train.family import StepContext

        plan = self.plan
        self.dataset = build_dataset(plan.dataset, self.seed, sdxl=plan.family == "sdxl")
        if plan.dataset.cache_latents:
            self.models.vae.to(self.accelerator.device)
            with torch.no_grad():
                self.dataset.cache_latents(lambda x: self.family.raw_latents(self.models, x),
                                           to_disk=plan.dataset.cache_latents_to_disk,
                                           vae_batch_size=plan.dataset.vae_batch_size,
                                           files=self.family.latent_cache_files(plan))
        self.ctx = StepContext(device=self.accelerator.device, autocast=self.accelerator.autocast,
                               train_text_encoders=plan.model.train_text_encoders, run_parts={},
                               mixed_precision=self.mixed)
        self.family.prepare_text_cache(self.models, plan, self.dataset, self.ctx)
        self.val_dataset = None
        if plan.validation.enabled:
            from lora_compat.train.dataset import FINETUNE, build_validation_dataset

            self.val_dataset = build_validation_dataset(plan.dataset, self.seed, sdxl=plan.family == "sdxl")
            if self.val_dataset is None:
                self.say("warning: validation_split is set but no dataset holds images out; no validation loss")
                return
            # cached text-encoder outputs: validation captions are the raw file text too, as sd-scripts caches them
            self.val_dataset.raw_captions = self.dataset.raw_captions
            if any(ds.kind == FINETUNE for ds in self.val_dataset.datasets):
                self.say("warning: validation_split on a fine-tune (metadata_file) dataset: sd-scripts splits "
                         "nothing there, so the validation loss is measured on the training images")
            elif plan.dataset.cache_latents:
                with torch.no_grad():
                    self.val_dataset.cache_latents(lambda x: self.family.raw_latents(self.models, x),
                                                   to_disk=plan.dataset.cache_latents_to_disk,
                                                   vae_batch_size=plan.dataset.vae_batch_size,
                                                   files=self.family.latent_cache_files(plan))

    # ---- network ----------------------------------------------------------------------------------------
    def build_network(self) -> None:
        plan, models = self.plan, self.models
        self.nets = self.family.build_network(models, plan, mixed_precision=self.mixed, say=self.say)
        if plan.model.gradient_checkpointing:
            self.family.enable_gradient_checkpointing(models, plan.model.train_text_encoders)

    # ---- steps ------------------------------------------------------------------------------------------
    def resolve_steps(self) -> None:
        from lora_compat.semantics.steps import (
            max_train_steps_for_epochs,
            optimizer_steps_per_epoch,
            save_every_n_epochs_from_ratio,
        )

        sp = self.plan.steps
        self.nproc = self.accelerator.num_processes
        self.grad_acc = sp.gradient_accumulation_steps
        self.batches = len(self.dataset)
        if sp.steps_per_epoch_exact and sp.steps_per_epoch != self.batches:
            self.say(f"warning: the plan counted {sp.steps_per_epoch} batches per epoch, the dataset has "
                     f"{self.batches}; training with the dataset's")
        if sp.max_train_epochs is not None:
            mts = max_train_steps_for_epochs(sp.max_train_epochs, self.batches, self.nproc, self.grad_acc)
        else:
            mts = int(sp.max_train_steps)  # training_plan refused an unknown length
        self.max_train_steps = mts
        self.per_proc_batches = math.ceil(self.batches / self.nproc)
        self.updates_per_epoch = optimizer_steps_per_epoch(self.batches, self.nproc, self.grad_acc)
        self.num_epochs = math.ceil(mts / self.updates_per_epoch)
        out = self.plan.outputs
        self.save_n_epochs = out.save_every_n_epochs or 0
        if out.save_n_epoch_ratio:
            self.save_n_epochs = save_every_n_epochs_from_ratio(self.num_epochs, out.save_n_epoch_ratio)
        self.dataset.set_max_train_steps(mts)  # ratio token_warmup_step values resolve against it

    # ---- optimizer, schedule, accelerate ----------------------------------------------------------------
    def build_optimizer(self) -> None:
        import torch

        from lora_compat.semantics import lr_lambda
        from lora_compat.train.dataset import DatasetCheckpoint
        from lora_compat.train.optimizers import build_optimizer

        plan = self.plan
        groups = self.family.param_groups(plan, self.nets)
        if not groups:
            raise UserError("every parameter group has learning rate 0 or none: nothing would be trained",
                            key="learning_rate")
        self.params = [p for g in groups for p in g["params"]]
        optimizer, self.ss_optimizer = build_optimizer(plan.optimizer, groups)
        s = plan.scheduler
        if plan.optimizer.relative_step:
            # sd-scripts: relative_step forces AdafactorSchedule(initial_lr=learning_rate) (§4.10, §4.11)
            from transformers.optimization import AdafactorSchedule

            lr_scheduler = AdafactorSchedule(optimizer, initial_lr=s.learning_rate)
        else:
            if plan.optimizer.schedule_free:
                factor = (lambda t: 1.0)  # noqa: E731  schedule-free: a dummy scheduler, LR constant
            else:
                try:
                    factor = lr_lambda(s.name, self.max_train_steps, lr_warmup_steps=s.lr_warmup_steps,
                                       lr_decay_steps=s.lr_decay_steps, lr_scheduler_num_cycles=s.num_cycles,
                                       lr_scheduler_power=s.power, lr_scheduler_timescale=s.timescale,
                                       lr_scheduler_min_lr_ratio=s.min_lr_ratio, lr_scheduler_args=s.args or None,
                                       learning_rate=s.learning_rate, num_processes=self.nproc)
                except (ValueError, TypeError, KeyError) as exc:
                    raise UserError(f"lr_scheduler {s.name!r}: {exc}", key="lr_scheduler") from None
            lr_scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
        self.used["initial_lrs"] = [g.get("initial_lr", g.get("lr")) for g in optimizer.param_groups]
        self.used["optimizer_class"] = f"{type(optimizer).__module__}.{type(optimizer).__name__}"
        # No DataLoader: batches are whole buckets built by the dataset, fetched in order by index and sharded
        # by hand. A prepared DataLoader would prefetch one batch (consuming the dataset's RNG before a state
        # save) and call dataset.set_epoch with its own counter, both of which break exact resume.
        denoiser = self.models.denoiser
        trained = [denoiser] if any(n.model is denoiser for n in self.nets) else []
        trained += [n.model for n in self.nets if n.model is not denoiser]
        prepared = self.accelerator.prepare(*trained, optimizer, lr_scheduler)
        self.wrapped = list(prepared[:len(trained)])
        self.optimizer, self.lr_scheduler = prepared[len(trained):]
        # sd-scripts' optimizer_train_fn / optimizer_eval_fn (get_optimizer_train_eval_fn): only for optimizer
        # types ending in "ScheduleFree"; every other optimizer gets no-ops
        raw = getattr(self.optimizer, "optimizer", self.optimizer)
        self.schedule_free = plan.optimizer.schedule_free and callable(getattr(raw, "train", None))
        if plan.precision.full_fp16:
            from lora_compat.train.precision import allow_fp16_grad_unscaling

            allow_fp16_grad_unscaling(self.accelerator)
        self.accelerator.register_for_checkpointing(DatasetCheckpoint(self.dataset))
        st.keep_only_trainable_weights(self.accelerator)
        wmap = {id(m): w for m, w in zip(trained, self.wrapped, strict=True)}
        self.ctx.run_parts = {name: wmap.get(id(m), m) for name, m in self.models.parts.items()}
        with _quiet_diffusers():
            self.family.place_models(self.models, self.accelerator.device)
        self.models.denoiser.train()
        for n in self.nets:
            n.model.train()
        for te in self.models.text_encoders:
            if not any(n.model is te for n in self.nets):
                te.eval()
        self.models.vae.eval()
        self._metadata()

    def _metadata(self) -> None:
        from lora_compat.train.metadata import RunFacts, describe_datasets, training_metadata

        plan, ds = self.plan, self.dataset
        facts = RunFacts(num_train_images=ds.num_train_images, num_reg_images=ds.num_reg_images,
                         num_batches_per_epoch=self.per_proc_batches, num_epochs=self.num_epochs,
                         max_train_steps=self.max_train_steps,
                         # sd-scripts: train_batch_size x processes x accumulation (ss_total_batch_size)
                         total_batch_size=int(plan.outputs.metadata.get("ss_batch_size_per_device") or 1)
                         * self.nproc * self.grad_acc,
                         seed=self.seed, ss_optimizer=self.ss_optimizer, session_id=self.session_id,
                         training_started_at=self.started_at, dataset_dirs=ds.dataset_dirs,
                         tag_frequency=ds.tag_frequency)
        facts.datasets_json, facts.reg_dataset_dirs, facts.bucket_info = describe_datasets(ds)
        self.base_meta = training_metadata(plan.outputs.metadata, facts, plan.model.base_model)

    # ---- resume -----------------------------------------------------------------------------------------
    def restore(self) -> None:
        self.first_epoch, self.skip_batches = 0, 0
        if self.opts.resume:
            rdir = Path(str(self.opts.resume))
            st.load_train_state(self.accelerator, rdir)
            self.global_step = st.read_train_state(rdir).get("current_step", 0)
            self.first_epoch = self.global_step // self.updates_per_epoch
            self.skip_batches = (self.global_step % self.updates_per_epoch) * self.grad_acc
            self.say(f"resumed from {rdir} at step {self.global_step}")
        if self.log_with and self.accelerator.is_main_process:
            # sd-scripts' init_trackers: project = log_tracker_name, wandb run name = wandb_run_name
            self.accelerator.init_trackers(self.trackers.project, config=self.trackers.config,
                                           init_kwargs=self.trackers.init_kwargs)
            init_wandb_metrics(self.accelerator)

    # ---- loop -------------------------------------------------------------------------------------------
    def loop(self) -> None:
        from lora_compat.train.progress import Progress

        acc = self.accelerator
        progress = Progress(self.opts.show_progress and acc.is_local_main_process, self.max_train_steps,
                            self.global_step)
        self.final_epoch = self.first_epoch
        self._optimizer_mode(train=False)
        if not self.opts.resume:
            self._sample(epoch=0)  # sd-scripts: before the first epoch (sample_at_first)
        self._optimizer_mode(train=True)   # a schedule-free optimizer starts in eval mode and refuses to step
        with st.InterruptFlag() as stop, progress:
            for epoch in range(self.first_epoch, self.num_epochs):
                self.final_epoch = epoch
                if self._epoch(epoch, stop, progress) or self.global_step >= self.max_train_steps:
                    break

    def _epoch(self, epoch: int, stop: Any, progress: Any) -> bool:
        """One epoch; True when the run stops (interrupted)."""
        from lora_compat.train.dataset import shard_batches

        acc, out = self.accelerator, self.plan.outputs
        local = shard_batches(self.batches, acc.num_processes, acc.process_index)
        start, self.skip_batches = self.skip_batches, 0
        if not start:
            # a mid-epoch resume restored the dataset as it was inside this epoch (worker views, lag): announcing
            # the epoch again would reset them
            self.dataset.set_epoch(epoch + 1)
        for j in range(start, len(local)):
            # sd-scripts/accelerate: sync every grad_acc micro-batches and at the end of each epoch.
            sync = (j + 1) % self.grad_acc == 0 or j + 1 == len(local)
            self._micro_batch(local[j], sync)
            if not sync:
                continue
            self._after_step(epoch, progress)
            if _any_process(acc, stop.requested) and self.global_step < self.max_train_steps:
                self.interrupted = True
                # at the last batch of an epoch, let the epoch-end saves run first (a resumed run starts with
                # the next epoch and would never make them)
                if j + 1 < len(local):
                    self._optimizer_mode(train=False)   # states hold what the saves hold (the eval point)
                    self.state_dir = self._save_state(st.step_name(out.output_name, self.global_step, out.extension),
                                                      epoch)
                    return True
            if self.global_step >= self.max_train_steps:
                break
        if not self.interrupted and validate_after_epoch(epoch + 1, self.plan.validation.every_n_epochs):
            self._validate(progress, "epoch", epoch + 1)
        if self.log_with and self.losses:
            log_values(acc, {"loss/epoch_average": self._moving_average()}, step_value=epoch + 1,
                       global_step=self.global_step, epoch=epoch + 1)
        self._optimizer_mode(train=False)   # sd-scripts: epoch saves and samples in the optimizer's eval mode
        if self.save_n_epochs and (epoch + 1) % self.save_n_epochs == 0 and epoch + 1 < self.num_epochs:
            name = st.epoch_name(out.output_name, epoch + 1, out.extension)
            self._save_model(name, epoch + 1)
            if out.save_state:
                self._save_state(name, epoch + 1)
            self._remove(st.removable_epoch(epoch + 1, self.save_n_epochs, out.save_last_n_epochs),
                         lambda n: st.epoch_name(out.output_name, n, out.extension))
        self._sample(epoch=epoch + 1)  # sd-scripts: at every epoch end, after the epoch's saves
        if self.interrupted:
            self.state_dir = self._save_state(st.step_name(out.output_name, self.global_step, out.extension),
                                              epoch + 1)
            return True
        self._optimizer_mode(train=True)
        return False

    def _micro_batch(self, index: int, sync: bool) -> None:
        acc = self.accelerator
        self.dataset.set_current_step(self.global_step)
        batch = self.dataset[index]
        acc.gradient_state._set_sync_gradients(sync)
        with contextlib.ExitStack() as no_sync:
            if not sync:
                for m in self.wrapped:
                    no_sync.enter_context(acc.no_sync(m))
            loss = self._loss(batch)
            acc.backward(loss)
        if sync:
            if self.plan.optimizer.max_grad_norm:
                acc.clip_grad_norm_(self.params, float(self.plan.optimizer.max_grad_norm))
            self.lrs.append([g["lr"] for g in self.optimizer.param_groups])  # the LR this step uses
            self.optimizer.step()
            self.lr_scheduler.step()
            self.optimizer.zero_grad(set_to_none=True)
        if "scale_weight_norms" in self.plan.engine_options:
            # sd-scripts: after every micro-batch, outside accumulate; (keys scaled, mean norm, max norm)
            scaled, mean, top = self.family.apply_max_norm(
                self.nets, self.plan.engine_options["scale_weight_norms"]["max_norm"])
            self.max_norms.append((int(scaled), float(mean), float(top)))
        self.last_loss = loss

    def _loss(self, batch: dict[str, Any]) -> Any:
        """One micro-batch through the family: latents, text conditioning, per-sample loss -> mean."""
        fam, models = self.family, self.models
        if batch.get("latents") is not None:
            latents = fam.scale_latents(models, batch["latents"])  # cached unscaled, as sd-scripts caches
        else:
            latents = fam.encode_images(models, batch["images"])
        conditioning = fam.encode_text(models, batch, self.plan, self.ctx)
        return fam.loss(models, latents, conditioning, batch, self.plan, self.ctx).mean()

    def _after_step(self, epoch: int, progress: Any) -> None:
        acc, out = self.accelerator, self.plan.outputs
        self.global_step += 1
        lv = float(acc.gather(self.last_loss.detach().reshape(1)).mean())
        self.losses.append(lv)
        norms = self.max_norms[-1] if self.max_norms else None
        progress.advance(lv, self.lr_scheduler.get_last_lr()[0],
                         f" keys scaled {norms[0]} avg key norm {norms[1]:.4g}" if norms else "")
        if self.log_with:
            self._log_step(lv, epoch, norms)
        if self.opts.on_step:
            self.opts.on_step(self.global_step, lv)
        # sd-scripts: after every optimizer step the optimizer goes to eval mode for the step's samples and saves,
        # then back to train mode (for schedule-free optimizers this round trip runs at every step)
        self._optimizer_mode(train=False)
        self._sample(epoch=None)  # sd-scripts: after the step, before its saves
        n = out.save_every_n_steps
        if n and self.global_step % n == 0:  # also on the last step, as sd-scripts
            name = st.step_name(out.output_name, self.global_step, out.extension)
            self._save_model(name, epoch)
            if out.save_state:
                self._save_state(name, epoch)
            self._remove(st.removable_step(self.global_step, n, out.save_last_n_steps),
                         lambda k: st.step_name(out.output_name, k, out.extension))
        self._optimizer_mode(train=True)
        if validate_after_step(self.global_step, self.plan.validation.every_n_steps):
            self._validate(progress, "step", epoch + 1)

    def _optimizer_mode(self, *, train: bool) -> None:
        """sd-scripts' ``optimizer_train_fn`` / ``optimizer_eval_fn``: a schedule-free optimizer is switched to
        its train point before stepping and to its averaged (eval) point before samples, validation and saves,
        so the saved weights are the averaged ones; other optimizers are left alone."""
        if self.schedule_free:
            raw = getattr(self.optimizer, "optimizer", self.optimizer)
            (raw.train if train else raw.eval)()

    # ---- validation loss --------------------------------------------------------------------------------
    def _validate(self, progress: Any, kind: str, epoch: int) -> None:
        """One validation pass as sd-scripts' (``train_network.py``): at most ``max_validation_steps`` batches
        of the held-out images, each at every fixed validation timestep, without gradients, network in eval
        mode, torch and Python's RNG seeded with the validation seed (else the run's) and restored afterwards.
        The pass's mean loss is recorded, shown in the progress bar and logged."""
        import torch

        from lora_compat.semantics.samples import validation_steps

        vp, vds = self.plan.validation, self.val_dataset
        n = validation_steps(len(vds), vp.max_steps) if vds is not None else 0
        if not n:
            return
        cpu_state, py_state = torch.get_rng_state(), random.getstate()
        cuda_states = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
        seed = vp.seed if vp.seed is not None else self.seed
        torch.manual_seed(seed)
        random.seed(seed)
        modes = [(m, m.training) for m in self.models.all_modules]
        losses = []
        try:
            for m, _ in modes:
                m.eval()
            self._optimizer_mode(train=False)
            with torch.no_grad():
                assert vds is not None  # n > 0 only with a validation dataset
                for i in range(n):
                    batch = vds[i]
                    for t in vp.timesteps:
                        self.ctx.fixed_timestep = int(t)
                        losses.append(self._loss(batch).detach().float())
        finally:
            self.ctx.fixed_timestep = None
            for m, training in modes:
                m.train(training)
            self._optimizer_mode(train=True)
            torch.set_rng_state(cpu_state)
            random.setstate(py_state)
            if cuda_states is not None:
                torch.cuda.set_rng_state_all(cuda_states)
        value = float(torch.stack(losses).mean())   # one host sync per pass
        self.validation.append((self.global_step, value))
        progress.set_validation(value)
        if self.log_with:
            # sd-scripts: the pass's average and its divergence from the training loss's moving average
            train_avg = self._moving_average() if self.losses else value
            log_values(self.accelerator, {f"loss/validation/{kind}_average": value,
                                          f"loss/validation/{kind}_divergence": value - train_avg},
                       step_value=self.global_step if kind == "step" else epoch, global_step=self.global_step,
                       epoch=epoch)

    def _moving_average(self) -> float:
        """sd-scripts' LossRecorder.moving_average: the mean of the last epoch's worth of step losses."""
        window = self.losses[-max(1, self.updates_per_epoch):]
        return sum(window) / len(window)

    def _log_step(self, loss: float, epoch: int, norms: Any) -> None:
        """sd-scripts' step logs (:func:`lora_compat.train.trackers.step_logs`) at the global step."""
        groups = self.optimizer.param_groups
        names = [str(g.get("name") or f"group{i}") for i, g in enumerate(groups)]
        adaptive = self.plan.optimizer.name.lower().startswith(("dadapt", "prodigy"))
        logs = step_logs(loss, self._moving_average(), names, self.lr_scheduler.get_last_lr(),
                         [g.get("d") for g in groups] if adaptive else None, norms)
        log_values(self.accelerator, logs, step_value=self.global_step, global_step=self.global_step,
                   epoch=epoch + 1)

    # ---- sample images ----------------------------------------------------------------------------------
    def _sample(self, *, epoch: int | None) -> None:
        """Sample images when sd-scripts would make them now (:mod:`lora_compat.train.sampling`)."""
        if not self.plan.samples.enabled:
            return
        from lora_compat.train.sampling import sample_images

        tracker = sample_image_logger(self.accelerator) if self.log_with else None
        self.samples += sample_images(family=self.family, models=self.models, plan=self.plan, ctx=self.ctx,
                                      accelerator=self.accelerator, global_step=self.global_step, epoch=epoch,
                                      tracker=tracker, say=self.say)

    # ---- saving -----------------------------------------------------------------------------------------
    def _save_model(self, name: str, epoch: int) -> Path:
        from lora_compat.train.metadata import modelspec, save_metadata
        from lora_compat.train.saving import save_kohya

        acc, out = self.accelerator, self.plan.outputs
        acc.wait_for_everyone()
        path = self.out_dir / name
        if acc.is_main_process:
            sd = self.family.state_dict(self.nets, self.plan.precision.save_precision)
            md = save_metadata(self.base_meta, modelspec(out.modelspec), epoch, self.global_step, out.no_metadata)
            save_kohya(path, sd, md if out.extension == ".safetensors" else None)
            self.saved.append(path)
        return path

    def _save_state(self, model_name: str, epoch: int) -> Path:
        folder = self.out_dir / st.state_dir_name(model_name, self.plan.outputs.extension)
        return st.save_train_state(self.accelerator, folder, epoch, self.global_step, seed=self.seed)

    def _remove(self, old: int | None, name_of: Callable[[int], str]) -> None:
        """Drop a save (and its state folder) that fell out of the save_last_n window."""
        if old and self.accelerator.is_main_process:
            name = name_of(old)
            st.remove_quietly(self.out_dir / name)
            st.remove_quietly(self.out_dir / st.state_dir_name(name, self.plan.outputs.extension))

    def save(self) -> TrainResult:
        from lora_compat.train.saving import weights_digest

        acc, out = self.accelerator, self.plan.outputs
        final: Path | None = None
        peft_dir: Path | None = None
        self._optimizer_mode(train=False)   # sd-scripts: the final model and state in eval mode, left there
        if not self.interrupted:
            name = st.last_name(out.output_name, out.extension)
            final = self._save_model(name, self.num_epochs)
            if out.save_state or out.save_state_on_train_end:
                self.state_dir = self._save_state(name, self.num_epochs)
            if self.opts.save_peft and acc.is_main_process:
                peft_dir = self.family.save_peft(self.out_dir / ((out.output_name or "last") + "-peft"), self.nets,
                                                 final)
        loss_plot = self._loss_plot() if acc.is_main_process and self.losses else None
        if self.log_with:
            acc.end_training()
        acc.wait_for_everyone()
        return TrainResult(self.out_dir, final, self.saved, self.global_step, self.final_epoch + 1, self.losses,
                           self.interrupted, self.state_dir, peft_dir, self.base_meta, self.max_train_steps,
                           self.plan.steps.train_batch_size * self.nproc * self.grad_acc,
                           acc.process_index, self.nproc, weights_digest(self.family.state_dict(self.nets, None)),
                           self.lrs, self.record(), self.samples, self.validation, loss_plot,
                           self.trackers.log_dir, self.trackers.trackers)

    def _loss_plot(self) -> Path | None:
        """``loss.png`` beside the outputs: the loss of every step with its one-epoch moving average, the
        validation passes and each group's LR (:func:`lora_compat.plots.training.plot_training`)."""
        try:
            from lora_compat.plots.training import plot_training
        except ImportError:
            self.say("warning: matplotlib is not installed; loss.png not written (pip install 'lora-compat[plot]')")
            return None
        labels = [g.get("name", f"group {i}") for i, g in enumerate(self.optimizer.param_groups)]
        return plot_training(self.out_dir / "loss.png", self.losses, lrs=self.lrs, lr_labels=labels,
                             validation=self.validation, average_window=self.updates_per_epoch,
                             title=f"{self.plan.outputs.output_name or 'last'}: loss")

    def record(self) -> dict[str, Any]:
        """What this run actually used, taken from the live objects (not copied from the plan), in the plan's
        JSON vocabulary: ``plan --format json`` and this record agree on every run of one process."""
        adapters = self.family.adapter_record(self.nets)
        return {
            "family": self.plan.family, "seed": self.seed, "mixed_precision": self.mixed,
            "steps": {"max_train_steps": self.max_train_steps, "epochs": self.num_epochs,
                      "steps_per_epoch": self.batches, "optimizer_steps_per_epoch": self.updates_per_epoch,
                      "gradient_accumulation_steps": self.grad_acc, "num_processes": self.nproc,
                      "dataset_batch_sizes": [ds.batch_size for ds in self.dataset.datasets]},
            "optimizer": {"class": self.used["optimizer_class"], "ss_optimizer": self.ss_optimizer,
                          "initial_lrs": self.used["initial_lrs"]},
            "scheduler": {"name": self.base_meta.get("ss_lr_scheduler"),
                          "lr_warmup_steps": self.plan.scheduler.lr_warmup_steps},
            "adapters": adapters,
            "memory": self.family.memory_record(self.models, self.ctx),
            "scale_weight_norms": None if not self.max_norms else {
                "keys_scaled": [n[0] for n in self.max_norms], "average_key_norm": [n[1] for n in self.max_norms],
                "max_key_norm": [n[2] for n in self.max_norms]},
            "dataset": {"num_train_images": self.dataset.num_train_images,
                        "num_reg_images": self.dataset.num_reg_images},
            "metadata": dict(self.base_meta),
        }


def _any_process(accelerator: Any, flag: bool) -> bool:
    """True when any process got Ctrl-C (all ranks must stop at the same step)."""
    if accelerator.num_processes == 1:
        return flag
    import torch

    t = torch.tensor([1.0 if flag else 0.0], device=accelerator.device)
    return bool(accelerator.reduce(t, reduction="sum").item() > 0)


def _quiet_diffusers() -> Any:
    """Silence diffusers' logger while the block runs (:func:`lora_compat.train.family.quiet_diffusers`)."""
    from lora_compat.train.family import quiet_diffusers

    return quiet_diffusers()
