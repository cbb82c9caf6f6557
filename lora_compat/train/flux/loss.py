"""FLUX.1 loss math as sd-scripts computes it (``flux_train_network.py`` + ``train_network.process_batch``).

:func:`flux_loss_step` is one call of ``FluxNetworkTrainer.process_batch`` for cached text-encoder outputs:
noise, timesteps, packing, the DiT call, the prediction type, the target ``noise - latents``, Huber
thresholds, the element loss, SD3 weighting, the per-sample mean, the prior ``loss_weights`` and the batch
mean. The DiT is any callable taking BFL's keyword arguments, so the same function drives diffusers'
``FluxTransformer2DModel`` (:func:`lora_compat.train.flux.models.diffusers_dit`) and test stubs.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lora_compat.semantics.flux_options import FluxOptions
from lora_compat.train.flux.packing import guidance_vector, pack_latents, prepare_img_ids, unpack_latents
from lora_compat.train.flux.sampling import noisy_model_input_and_timesteps

DiT = Callable[..., Any]


def loss_weighting_sd3(weighting_scheme: str, sigmas: Any) -> Any:
    """SD3 loss weighting (``compute_loss_weighting_for_sd3``): ``sigma**-2`` for ``sigma_sqrt``,
    ``2 / (pi (1 - 2 sigma + 2 sigma^2))`` for ``cosmap``, ones otherwise."""
    import torch

    if weighting_scheme == "sigma_sqrt":
        return (sigmas**-2.0).float()
    if weighting_scheme == "cosmap":
        bot = 1 - 2 * sigmas + 2 * sigmas**2
        return 2 / (math.pi * bot)
    return torch.ones_like(sigmas)


def apply_model_prediction_type(options: FluxOptions, model_pred: Any, noisy_model_input: Any,
                                sigmas: Any) -> tuple[Any, Any]:
    """(prediction compared with the target, loss weighting or None), per ``--model_prediction_type``.

    ``raw``: unchanged; ``additive``: ``pred + noisy_input``; ``sigma_scaled``: ``pred * (-sigma) +
    noisy_input`` with the SD3 weighting of ``--weighting_scheme`` (the only type that weights the loss).
    """
    weighting = None
    kind = options.model_prediction_type
    if kind == "additive":
        model_pred = model_pred + noisy_model_input
    elif kind == "sigma_scaled":
        model_pred = model_pred * (-sigmas) + noisy_model_input
        weighting = loss_weighting_sd3(options.weighting_scheme, sigmas)
    elif kind != "raw":
        raise ValueError(f"model_prediction_type: unknown value {kind!r}")
    return model_pred, weighting


def huber_threshold(options: FluxOptions, timesteps: Any, num_train_timesteps: int = 1000) -> Any:
    """Per-sample Huber ``c`` for ``huber``/``smooth_l1`` (``train_util.get_huber_threshold_if_needed``), None
    for other losses. ``snr`` raises ``NotImplementedError`` as in sd-scripts: the flow scheduler has no SNR."""
    import torch

    if options.loss_type not in ("huber", "smooth_l1"):
        return None
    if options.huber_schedule == "exponential":
        alpha = -math.log(options.huber_c) / num_train_timesteps
        return torch.exp(-alpha * timesteps) * options.huber_scale
    if options.huber_schedule == "snr":
        raise NotImplementedError("Huber schedule 'snr' is not supported with the current model.")
    if options.huber_schedule == "constant":
        return torch.full((timesteps.shape[0],), options.huber_c * options.huber_scale, device=timesteps.device)
    raise NotImplementedError(f"Unknown Huber loss schedule {options.huber_schedule}!")


def conditional_loss(model_pred: Any, target: Any, loss_type: str, huber_c: Any = None) -> Any:
    """Element-wise loss (``train_util.conditional_loss`` with ``reduction="none"``), same op order."""
    import torch

    if loss_type == "l2":
        return torch.nn.functional.mse_loss(model_pred, target, reduction="none")
    if loss_type == "l1":
        return torch.nn.functional.l1_loss(model_pred, target, reduction="none")
    if loss_type in ("huber", "smooth_l1"):
        if huber_c is None:
            raise ValueError(f"loss_type {loss_type} needs a Huber threshold")
        c = huber_c.view(-1, *([1] * (model_pred.ndim - 1)))
        if loss_type == "huber":
            return 2 * c * (torch.sqrt((model_pred - target) ** 2 + c**2) - c)
        return 2 * (torch.sqrt((model_pred - target) ** 2 + c**2) - c)
    raise ValueError(f"loss_type: unknown value {loss_type!r}")


@dataclass
class DiTCall:
    """The keyword arguments one training step passes to the DiT (BFL ``Flux.forward`` names)."""

    img: Any
    img_ids: Any
    txt: Any
    txt_ids: Any
    y: Any
    timesteps: Any
    guidance: Any
    txt_attention_mask: Any

    def as_kwargs(self) -> dict[str, Any]:
        """The call's keyword arguments."""
        return {"img": self.img, "img_ids": self.img_ids, "txt": self.txt, "txt_ids": self.txt_ids, "y": self.y,
                "timesteps": self.timesteps, "guidance": self.guidance,
                "txt_attention_mask": self.txt_attention_mask}


@dataclass
class FluxStep:
    """Everything one :func:`flux_loss_step` computed."""

    loss: Any                 # scalar: the batch mean (what the optimizer minimises)
    per_sample_loss: Any      # [b] after weighting and loss_weights
    model_pred: Any           # [b, c, h, w] after the prediction type
    target: Any               # noise - latents
    timesteps: Any            # 0..1000 in the weight dtype
    sigmas: Any
    weighting: Any            # SD3 weighting or None
    noisy_model_input: Any
    dit_call: DiTCall


def flux_loss_step(dit: DiT, latents: Any, text_conds: tuple[Any, Any, Any, Any], options: FluxOptions,
                   scheduler: Any, *, weight_dtype: Any, loss_weights: Any = None, device: Any = None,
                   is_train: bool = True, autocast: Callable[[], Any] | None = None,
                   loss_mask: Any = None) -> FluxStep:
    """One FLUX.1 training step's loss, as ``FluxNetworkTrainer.process_batch`` computes it.

    ``latents``: ``[b, 16, h, w]`` (already scaled/shifted by the AE factors); ``text_conds``: ``(l_pooled,
    t5_out, txt_ids, t5_attn_mask)`` as ``strategy_flux`` encodes or caches them; ``weight_dtype``: the
    mixed-precision dtype (noisy input and timesteps are cast to it, as sd-scripts does); ``loss_weights``:
    ``[b]`` prior-preservation weights (ones by default); ``autocast``: a context factory wrapping the DiT
    call (accelerate's ``autocast``); ``loss_mask``: optional ``[b, 1|c, h, w]`` mask multiplied into the
    element loss (sd-scripts' ``apply_masked_loss``). Random numbers: ``torch.randn_like(latents)`` for the
    noise first, then the timestep sampling (then ip-noise), as sd-scripts.
    """
    import torch

    device = latents.device if device is None else device
    noise = torch.randn_like(latents)
    bsz = latents.shape[0]
    sampled = noisy_model_input_and_timesteps(options, scheduler, latents, noise, device, weight_dtype)
    noisy, timesteps, sigmas = sampled.noisy_model_input, sampled.timesteps, sampled.sigmas

    packed = pack_latents(noisy)
    ph, pw = noisy.shape[2] // 2, noisy.shape[3] // 2
    img_ids = prepare_img_ids(bsz, ph, pw).to(device=device)
    guidance = guidance_vector(options.guidance_scale, bsz, device=device)
    l_pooled, t5_out, txt_ids, t5_attn_mask = text_conds
    if not options.apply_t5_attn_mask:
        t5_attn_mask = None
    call = DiTCall(img=packed, img_ids=img_ids, txt=t5_out, txt_ids=txt_ids, y=l_pooled, timesteps=timesteps / 1000,
                   guidance=guidance, txt_attention_mask=t5_attn_mask)
    ctx = autocast() if autocast is not None else contextlib.nullcontext()
    with torch.set_grad_enabled(is_train), ctx:
        model_pred = dit(**call.as_kwargs())
    model_pred = unpack_latents(model_pred, ph, pw)
    model_pred, weighting = apply_model_prediction_type(options, model_pred, noisy, sigmas)
    target = noise - latents

    huber_c = huber_threshold(options, timesteps, scheduler.config.num_train_timesteps)
    loss = conditional_loss(model_pred.float(), target.float(), options.loss_type, huber_c)
    if weighting is not None:
        loss = loss * weighting
    if loss_mask is not None:
        loss = loss * loss_mask
    loss = loss.mean(dim=list(range(1, loss.ndim)))
    if loss_weights is None:
        loss_weights = torch.ones(bsz, device=loss.device)
    loss = loss * loss_weights
    return FluxStep(loss.mean(), loss, model_pred, target, timesteps, sigmas, weighting, noisy, call)
