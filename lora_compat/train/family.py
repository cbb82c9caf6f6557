"""The model-family axis of the engine: what differs between model families lives behind one interface.

A family (SD1 / SD2 / SDXL, FLUX.1) decides how its models are loaded, how images become latents,
how captions become conditioning, and how one micro-batch becomes a per-sample loss (noise, timesteps, latent
packing, the denoiser call, the target, loss weighting) — sd-scripts' ``NetworkTrainer`` hooks
(``load_target_model``, ``encode_images_to_latents`` / ``shift_scale_latents``, ``get_text_cond``,
``get_noise_pred_and_target``, ``post_process_loss``) — and its network: which adapters it injects and how
(``build_network``), their optimizer groups, their kohya state dict and PEFT output, max-norm, where the models
live on the device. Everything else (data, optimizer, schedule, the loop, states, saves) is shared by
:mod:`lora_compat.train.engine`.

A new family is one module implementing :class:`TrainingFamily` and one line in :data:`FAMILY_MODULES`; the
engine never branches on a family name.

Sample images, validation and memory options (the contract between the engine and a family):

* **Sampling** (``sample_prompts``): the engine decides when (sd-scripts' rule), saves torch's CPU and CUDA RNG
  states, moves parked modules (:attr:`FamilyModels.parked`) to the device, puts every model in eval mode, and
  calls :meth:`TrainingFamily.open_sampler` once per sampling pass. For each prompt it seeds torch's global RNG
  exactly as sd-scripts (``torch.manual_seed`` + ``torch.cuda.manual_seed`` with the prompt's ``--d``, else
  ``torch.seed()``) and calls :meth:`FamilySampler.generate`, which applies the family's defaults and size
  rounding (SD: 512 px, 30 steps, CFG 7.5, multiples of 8; FLUX: 20 steps, guidance 3.5, CFG 1, multiples of 16),
  draws all randomness from torch's global RNG on ``ctx.device``, runs under ``ctx.autocast()`` and returns a PIL
  image. ``sampler`` is the ``sample_sampler`` name for families that use it (FLUX ignores it, as sd-scripts).
  Then :meth:`FamilySampler.close`; the engine writes ``<output_dir>/sample/<sd-scripts name>.png``, logs it,
  restores devices, training modes and RNG states, and clears the device cache. A family without a sampler keeps
  the default :meth:`TrainingFamily.open_sampler`, which refuses by name before the models load
  (:meth:`TrainingFamily.check_sampling`). The engine side is :mod:`lora_compat.train.sampling`.
* **Validation** (``validation_split``): the engine runs :meth:`TrainingFamily.loss` on held-out batches with
  :attr:`StepContext.fixed_timestep` set to each of sd-scripts' fixed validation timesteps (sd-scripts sets
  ``min_timestep = max_timestep = t``); a family must then use that timestep for every sample of the batch
  (a flow-matching family maps it to its sigma as its sd-scripts script does). Gradients are off, models are in
  eval mode, torch and Python's RNG are seeded with the validation seed and restored afterwards. A family
  declares it with :attr:`TrainingFamily.fixed_timesteps`; without it :meth:`TrainingFamily.check_validation`
  refuses by name before the models load.
* **Memory**: ``fp8_base`` inside :meth:`TrainingFamily.build_network` (after the adapters exist, which keep
  their dtype), :meth:`enable_gradient_checkpointing`,
  :meth:`set_attention`, :meth:`prepare_text_cache` (``cache_text_encoder_outputs`` [``_to_disk``]); after the
  caches are built the engine parks the VAE (cached latents) and frozen, cached text encoders on the CPU.
"""

from __future__ import annotations

import contextlib
import importlib
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

from lora_compat.errors import UserError

#: family name -> module defining ``FAMILY`` (a :class:`TrainingFamily` instance), imported when needed.
FAMILY_MODULES: dict[str, str] = {
    "sd1": "lora_compat.train.sd_unet",
    "sd2": "lora_compat.train.sd_unet",
    "sdxl": "lora_compat.train.sd_unet",
    "flux1": "lora_compat.train.flux.family",
}


@dataclass
class FamilyModels:
    """What a family loaded.

    ``parts`` maps each plan part that can carry an adapter (``unet``, ``text_encoder``, ``text_encoder_2`` for
    SD; the FLUX family names its own) to its module; ``denoiser`` is the part the loss runs through;
    ``frozen_in_mixed_precision`` are the modules cast to the mixed-precision dtype (sd-scripts keeps the
    frozen base in it; the VAE stays float32). ``extra`` holds family-specific state.
    """

    denoiser: Any
    vae: Any
    text_encoders: list[Any]
    tokenizers: list[Any]
    noise_scheduler: Any
    parts: dict[str, Any]
    frozen_in_mixed_precision: list[Any] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    parked: list[Any] = field(default_factory=list)   # modules kept on the CPU while training (engine-managed)

    @property
    def all_modules(self) -> list[Any]:
        """Every model module (denoiser, VAE, text encoders), once each."""
        out: list[Any] = []
        for m in (self.denoiser, self.vae, *self.text_encoders):
            if m is not None and not any(m is o for o in out):
                out.append(m)
        return out


@dataclass
class StepContext:
    """What one micro-batch's loss needs besides the batch: the device, accelerate's autocast, whether text
    encoders are trained, the modules to run (accelerate-wrapped where prepared), the mixed precision this run
    uses (``"no"``, ``"fp16"``, ``"bf16"``: the plan's, or ``"no"`` for fp16 without a GPU), and the family's
    caches."""

    device: Any
    autocast: Any
    train_text_encoders: bool
    run_parts: dict[str, Any]
    cache: dict[str, Any] = field(default_factory=dict)
    mixed_precision: str = "no"

    @property
    def weight_dtype(self) -> Any:
        """The dtype the frozen base runs in (sd-scripts' ``weight_dtype``)."""
        import torch

        return {"fp16": torch.float16, "bf16": torch.bfloat16}.get(self.mixed_precision, torch.float32)

    #: validation: every sample of the micro-batch uses this timestep (None: the family samples timesteps)
    fixed_timestep: int | None = None


class FamilySampler(ABC):
    """One sampling pass of a family (see the module docstring for what the engine does around it)."""

    @abstractmethod
    def generate(self, prompt: Any, *, sampler: str) -> Any:
        """The PIL image of one :class:`~lora_compat.semantics.samples.SamplePrompt` (torch's RNG already
        seeded by the engine)."""

    def close(self) -> None:
        """Drop pipelines and caches built for this pass."""
        return None


class TrainingFamily(ABC):
    """What the engine asks a model family. Implementations are stateless; state lives in :class:`FamilyModels`."""

    #: the families this implementation trains
    names: tuple[str, ...] = ()
    #: whether :meth:`loss` honours :attr:`StepContext.fixed_timestep` (validation loss needs it)
    fixed_timesteps: bool = False

    @abstractmethod
    def load(self, plan: Any, *, seed: int) -> FamilyModels:
        """Load the base model of ``plan.model`` (frozen: no gradients), checking it is of this family."""

    @abstractmethod
    def encode_images(self, models: FamilyModels, images: Any) -> Any:
        """Latents of a batch of images in [-1, 1] as the denoiser sees them (encoded, then scaled/shifted)."""

    @abstractmethod
    def raw_latents(self, models: FamilyModels, images: Any) -> Any:
        """Latents as sd-scripts caches them (encoded, before scaling/shifting): for the latent cache."""

    @abstractmethod
    def scale_latents(self, models: FamilyModels, raw: Any) -> Any:
        """Cached (raw) latents scaled/shifted as :meth:`encode_images` returns them."""

    @abstractmethod
    def encode_text(self, models: FamilyModels, batch: dict[str, Any], plan: Any, ctx: StepContext) -> Any:
        """The text conditioning of a batch (``batch["captions"]``), in whatever form :meth:`loss` expects."""

    @abstractmethod
    def loss(self, models: FamilyModels, latents: Any, conditioning: Any, batch: dict[str, Any], plan: Any,
             ctx: StepContext) -> Any:
        """Per-sample loss ``[b]`` of one micro-batch: noise and timesteps, the denoiser's prediction, the target,
        the element loss with masks, loss weighting and prior ``batch["loss_weights"]`` applied (sd-scripts'
        ``process_batch`` before its final mean)."""

    def enable_gradient_checkpointing(self, models: FamilyModels, train_text_encoders: bool) -> None:
        """Turn on activation checkpointing (the denoiser; text encoders when they are trained)."""

    def set_attention(self, models: FamilyModels, mode: str | None) -> None:
        """Select the attention implementation (``"sdpa"`` or None for the library default)."""

    def prepare_text_cache(self, models: FamilyModels, plan: Any, dataset: Any, ctx: StepContext) -> None:
        """Cache text-encoder outputs when the plan asks for it (``cache_text_encoder_outputs``)."""

    def latent_cache_files(self, plan: Any) -> Any:
        """The latent cache file layout (:class:`lora_compat.train.latents.LatentCacheFiles`); None: the SD one."""
        return None

    # ---- the network ------------------------------------------------------------------------------------
    @abstractmethod
    def build_network(self, models: FamilyModels, plan: Any, *, mixed_precision: str, say: Any) -> list[Any]:
        """Inject the plan's adapters into ``models.parts`` with sd-scripts' module set and dropouts, cast the
        frozen base to the mixed-precision dtype and the adapters to theirs, load ``plan.network_weights``.
        Returns one entry per trained model part, each with ``part`` and ``model`` (what accelerate prepares)."""

    @abstractmethod
    def param_groups(self, plan: Any, nets: list[Any]) -> list[dict[str, Any]]:
        """Optimizer parameter groups (``{"params", "lr", "name"}``; ``name``: sd-scripts' lr description, the
        label of ``loss.png``) in sd-scripts' order, as ``plan.param_groups``."""

    @abstractmethod
    def state_dict(self, nets: list[Any], save_precision: str | None) -> dict[str, Any]:
        """The kohya state dict sd-scripts would save (keys, shapes, dtypes; ``save_precision`` casts)."""

    @abstractmethod
    def adapter_record(self, nets: list[Any]) -> list[dict[str, Any]]:
        """Per part: ``{"part", "kind", "targets", "ranks", "lr"}`` of the live network (the run record)."""

    def save_peft(self, folder: Any, nets: list[Any], kohya_file: Any) -> Any:
        """Write the adapters as PEFT folders (``train --peft``); ``kohya_file`` is the final save. Returns the
        folder."""
        raise NotImplementedError

    def apply_max_norm(self, nets: list[Any], max_norm: float) -> Any:
        """``scale_weight_norms``: sd-scripts' ``apply_max_norm_regularization`` on the live network."""
        raise NotImplementedError

    def memory_record(self, models: FamilyModels, ctx: StepContext) -> dict[str, Any]:
        """The memory options in effect, read from the live models (the run record's ``memory``)."""
        return {}

    def place_models(self, models: FamilyModels, device: Any) -> None:
        """Move the models to ``device`` once the optimizer and accelerate are set up."""
        for m in models.all_modules:
            m.to(device)

    # ---- sample images ----------------------------------------------------------------------------------
    def check_sampling(self, plan: Any) -> None:
        """Refuse, by name, sample images this family cannot make (called before the models load when the plan
        samples). The default accepts when :meth:`open_sampler` is overridden."""
        if type(self).open_sampler is TrainingFamily.open_sampler:
            self.open_sampler(None, plan, None)  # type: ignore[arg-type]

    def check_validation(self, plan: Any) -> None:
        """Refuse, by name, a validation loss this family cannot compute as sd-scripts (its :meth:`loss` does not
        take :attr:`StepContext.fixed_timestep`); called before the models load when the plan validates."""
        if not self.fixed_timesteps:
            raise UserError(f"validation loss is not computed for {'/'.join(self.names) or 'this family'} yet: "
                            "leave validation_split out", key="validation_split")

    def open_sampler(self, models: FamilyModels, plan: Any, ctx: StepContext) -> FamilySampler:
        """A :class:`FamilySampler` for one sampling pass; families without one refuse here, by name."""
        raise UserError(f"sample images are not made for {'/'.join(self.names) or 'this family'} yet: leave "
                        "sample_prompts / sample_every_n_* out", key="sample_prompts")


@contextlib.contextmanager
def quiet_diffusers() -> Any:
    """Silence diffusers' logger (warnings only) for the duration of the block, then restore its level."""
    from diffusers.utils import logging as dlog

    previous = dlog.get_verbosity()
    dlog.set_verbosity_error()
    try:
        yield
    finally:
        dlog.set_verbosity(previous)


def family_for(name: str) -> TrainingFamily:
    """The :class:`TrainingFamily` that trains ``name``; a family without one is refused by name."""
    module = FAMILY_MODULES.get(name)
    if module is None:
        raise UserError(f"model family {name!r} is not trained by lora-compat yet (trained: "
                        f"{', '.join(sorted(FAMILY_MODULES))})", key="family")
    family: TrainingFamily = importlib.import_module(module).FAMILY
    return family
