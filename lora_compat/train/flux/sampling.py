"""Flow-matching timesteps, sigmas and noising exactly as sd-scripts trains FLUX.1.

Everything here follows ``library/flux_train_utils.py`` (``get_noisy_model_input_and_timesteps`` and the
helpers it calls) op for op, so that with the same torch random state the same numbers come out (golden
``flux_timesteps.json``). Random numbers are drawn in sd-scripts' order: the caller draws the noise first
(``torch.randn_like(latents)``), then this module draws the timestep randoms on the default generator, then the
input-perturbation noise when ``ip_noise_gamma`` is set.

Torch is imported inside the functions that need it; :func:`flux_shift_mu` (on sd-scripts' ``get_lin_function``,
:func:`lora_compat.semantics.flux_sampling.lin_function`, the one line shared with the sampler) is plain
Python.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from lora_compat.semantics.flux_options import FluxOptions
from lora_compat.semantics.flux_sampling import lin_function

NUM_TRAIN_TIMESTEPS = 1000


def flux_shift_mu(latent_height: int, latent_width: int) -> float:
    """``mu`` of ``--timestep_sampling flux_shift`` for latents of ``h x w``: the line through (256, 0.5) and
    (4096, 1.15) at the packed sequence length ``(h // 2) * (w // 2)``. Not clamped: small images give
    ``mu < 0.5``, large ones ``mu > 1.15``, exactly as sd-scripts."""
    return lin_function(y1=0.5, y2=1.15)((latent_height // 2) * (latent_width // 2))


def time_shift(mu: float, sigma: float, t: Any) -> Any:
    """BFL's resolution-dependent shift ``e^mu / (e^mu + (1/t - 1)^sigma)`` on a tensor ``t``."""
    return math.exp(mu) / (math.exp(mu) + (1 / t - 1) ** sigma)


def make_flow_scheduler(shift: float = 3.0) -> Any:
    """The training scheduler sd-scripts builds for FLUX: ``FlowMatchEulerDiscreteScheduler(num_train_timesteps
    =1000, shift=discrete_flow_shift)`` (sd-scripts keeps a copy of diffusers' class with the same tables)."""
    from diffusers import FlowMatchEulerDiscreteScheduler

    return FlowMatchEulerDiscreteScheduler(num_train_timesteps=NUM_TRAIN_TIMESTEPS, shift=shift)


def density_for_timestep_sampling(weighting_scheme: str, batch_size: int, logit_mean: float | None = None,
                                  logit_std: float | None = None, mode_scale: float | None = None) -> Any:
    """``u`` in [0, 1) per sample for ``--timestep_sampling sigma`` (sd-scripts / diffusers
    ``compute_density_for_timestep_sampling``): logit-normal, the SD3 "mode" density, else uniform. Drawn on
    the CPU default generator."""
    import torch

    if weighting_scheme == "logit_normal":
        u = torch.normal(mean=logit_mean, std=logit_std, size=(batch_size,), device="cpu")
        return torch.nn.functional.sigmoid(u)
    if weighting_scheme == "mode":
        u = torch.rand(size=(batch_size,), device="cpu")
        return 1 - u - mode_scale * (torch.cos(math.pi * u / 2) ** 2 - 1 + u)
    return torch.rand(size=(batch_size,), device="cpu")


def sigmas_for_timesteps(scheduler: Any, timesteps: Any, device: Any, dtype: Any) -> Any:
    """The scheduler's sigma (cast to ``dtype``) at each of ``timesteps`` (values of ``scheduler.timesteps``)."""
    sigmas = scheduler.sigmas.to(device=device, dtype=dtype)
    schedule_timesteps = scheduler.timesteps.to(device)
    timesteps = timesteps.to(device)
    step_indices = [(schedule_timesteps == t).nonzero().item() for t in timesteps]
    return sigmas[step_indices].flatten()


@dataclass
class NoisyInput:
    """What :func:`noisy_model_input_and_timesteps` returns (sd-scripts' three values, plus ``mu``)."""

    noisy_model_input: Any   # (1 - sigma) x + sigma (noise [+ gamma xi]), in the weight dtype
    timesteps: Any           # sigma * 1000 per sample, in the weight dtype (bf16 quantised under bf16)
    sigmas: Any              # [b, 1, 1, 1] (float32, or the weight dtype for ``sigma`` sampling)
    mu: float | None = None  # flux_shift only


def noisy_model_input_and_timesteps(options: FluxOptions, scheduler: Any, latents: Any, noise: Any, device: Any,
                                    dtype: Any) -> NoisyInput:
    """sd-scripts' ``get_noisy_model_input_and_timesteps`` for FLUX.1.

    ``uniform``: sigma ~ U[0, 1); ``sigmoid``: sigmoid(scale * N(0, 1)); ``shift``: that sigmoid, then
    ``s*t / (1 + (s-1)*t)`` with ``discrete_flow_shift``; ``flux_shift``: that sigmoid, then
    :func:`time_shift` with :func:`flux_shift_mu`; ``sigma``: a scheduler timestep drawn with the
    ``weighting_scheme`` density, its sigma looked up in ``dtype``. timesteps = sigma * 1000.
    """
    import torch

    bsz, h, w = latents.shape[0], latents.shape[-2], latents.shape[-1]
    if bsz <= 0:
        raise ValueError("batch size must be positive")
    num_timesteps = scheduler.config.num_train_timesteps
    mu = None
    sampling = options.timestep_sampling
    if sampling in ("uniform", "sigmoid"):
        if sampling == "sigmoid":
            sigmas = torch.sigmoid(options.sigmoid_scale * torch.randn((bsz,), device=device))
        else:
            sigmas = torch.rand((bsz,), device=device)
        timesteps = sigmas * num_timesteps
    elif sampling == "shift":
        shift = options.discrete_flow_shift
        sigmas = torch.randn(bsz, device=device)
        sigmas = sigmas * options.sigmoid_scale
        sigmas = sigmas.sigmoid()
        sigmas = (sigmas * shift) / (1 + (shift - 1) * sigmas)
        timesteps = sigmas * num_timesteps
    elif sampling == "flux_shift":
        sigmas = torch.randn(bsz, device=device)
        sigmas = sigmas * options.sigmoid_scale
        sigmas = sigmas.sigmoid()
        mu = flux_shift_mu(h, w)
        sigmas = time_shift(mu, 1.0, sigmas)
        timesteps = sigmas * num_timesteps
    elif sampling == "sigma":
        u = density_for_timestep_sampling(options.weighting_scheme, bsz, options.logit_mean, options.logit_std,
                                          options.mode_scale)
        indices = (u * num_timesteps).long()
        timesteps = scheduler.timesteps[indices].to(device=device)
        sigmas = sigmas_for_timesteps(scheduler, timesteps, device, dtype)
    else:
        raise ValueError(f"timestep_sampling: unknown value {sampling!r}")

    sigmas = sigmas.view(-1, 1, 1, 1) if latents.ndim == 4 else sigmas.view(-1, 1, 1, 1, 1)
    if options.ip_noise_gamma:
        xi = torch.randn_like(latents, device=latents.device, dtype=dtype)
        if options.ip_noise_gamma_random_strength:
            gamma = torch.rand(1, device=latents.device, dtype=dtype) * options.ip_noise_gamma
        else:
            gamma = options.ip_noise_gamma
        noisy = (1.0 - sigmas) * latents + sigmas * (noise + gamma * xi)
    else:
        noisy = (1.0 - sigmas) * latents + sigmas * noise
    return NoisyInput(noisy.to(dtype), timesteps.to(dtype), sigmas, mu)
