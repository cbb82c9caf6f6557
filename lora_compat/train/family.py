"""The model-family axis of the engine: what differs between model families lives behind one interface.

A family (SD1 / SD2 / SDXL today, FLUX.1 next) decides how its models are loaded, how images become latents,
how captions become conditioning, and how one micro-batch becomes a per-sample loss (noise, timesteps, latent
packing, the denoiser call, the target, loss weighting) — sd-scripts' ``NetworkTrainer`` hooks
(``load_target_model``, ``encode_images_to_latents`` / ``shift_scale_latents``, ``get_text_cond``,
``get_noise_pred_and_target``, ``post_process_loss``). Everything else (data, network, optimizer, schedule, the
loop, saving) is shared by :mod:`lora_compat.train.engine`.

A new family is one module implementing :class:`TrainingFamily` and one line in :data:`FAMILY_MODULES`; the
engine never branches on a family name.
"""

from __future__ import annotations

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


class TrainingFamily(ABC):
    """What the engine asks a model family. Implementations are stateless; state lives in :class:`FamilyModels`."""

    #: the families this implementation trains
    names: tuple[str, ...] = ()

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


def family_for(name: str) -> TrainingFamily:
    """The :class:`TrainingFamily` that trains ``name``; a family without one is refused by name."""
    module = FAMILY_MODULES.get(name)
    if module is None:
        raise UserError(f"model family {name!r} is not trained by lora-compat yet (trained: "
                        f"{', '.join(sorted(FAMILY_MODULES))})", key="family")
    family: TrainingFamily = importlib.import_module(module).FAMILY
    return family
