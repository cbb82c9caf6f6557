"""Noise, timesteps, targets and per-sample loss as sd-scripts computes them (reference §4.8, §4.9), for the
SD-UNet families; the settings are the plan's :class:`~lora_compat.plan.parts.NoisePlan`.

Torch is imported inside functions: this module is only used by the engine.  Loss *weights* that are pure
functions of the SNR (min-SNR, debiased, v-pred-like) and the zero-terminal-SNR schedule come from
:mod:`lora_compat.semantics` (matched to the golden vectors there).
"""

from __future__ import annotations

import math
import random
from typing import Any

from lora_compat.plan.parts import NoisePlan


def make_noise_scheduler(zero_terminal_snr: bool = False) -> Any:
    """sd-scripts' training scheduler, optionally rescaled to zero terminal SNR (§4.8.1-3)."""
    import torch
    from diffusers import DDPMScheduler

    sched = DDPMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                          num_train_timesteps=1000, clip_sample=False)
    if zero_terminal_snr:
        # Loss weights keep using the original SNR table (semantics.loss_weight); only add_noise and
        # get_velocity see the rescaled schedule (§4.8.3). The rescale runs as torch float32 ops in
        # sd-scripts' order (fix_noise_scheduler_betas_for_zero_terminal_snr) so the table is bit-equal to
        # sd-scripts' on the same machine; semantics.alphas_cumprod(True) is the documented pure-Python twin.
        betas = zero_terminal_snr_betas(sched.betas)
        sched.betas = betas
        sched.alphas = 1.0 - betas
        sched.alphas_cumprod = torch.cumprod(sched.alphas, dim=0)
    return sched


def zero_terminal_snr_betas(betas: Any) -> Any:
    """Rescale float32 ``betas`` to zero terminal SNR, op for op as sd-scripts does (torch tensors)."""
    import torch

    alphas_bar_sqrt = torch.cumprod(1.0 - betas, dim=0).sqrt()
    first, last = alphas_bar_sqrt[0].clone(), alphas_bar_sqrt[-1].clone()
    alphas_bar_sqrt -= last
    alphas_bar_sqrt *= first / (first - last)
    alphas_bar = alphas_bar_sqrt**2
    alphas = torch.cat([alphas_bar[0:1], alphas_bar[1:] / alphas_bar[:-1]])
    return 1 - alphas


def pyramid_noise_like(noise: Any, iterations: int, discount: float) -> Any:
    """Multi-resolution noise (CTF ``pyramid_noise_like``), Python ``random`` for the scale draws."""
    import torch
    b, c, w, h = noise.shape
    up = torch.nn.Upsample(size=(w, h), mode="bilinear")
    for i in range(iterations):
        r = random.random() * 2 + 2
        w2, h2 = max(1, int(w / (r ** i))), max(1, int(h / (r ** i)))
        noise = noise + up(torch.randn(b, c, w2, h2, device=noise.device, dtype=noise.dtype)) * discount ** i
        if w2 == 1 or h2 == 1:
            break
    return noise / noise.std()


def noise_and_timesteps(latents: Any, sched: Any, ns: NoisePlan) -> tuple[Any, Any, Any]:
    """(noise used for the target, noisy latents, timesteps) for a batch (§4.8.4-8)."""
    import torch

    noise = torch.randn_like(latents)
    if ns.noise_offset:
        off = ns.noise_offset
        if ns.noise_offset_random_strength:
            off = torch.rand(1, device=latents.device) * off
        if ns.adaptive_noise_scale is not None:
            lat_mean = latents.mean(dim=(2, 3), keepdim=True)
            off = torch.clamp(off + ns.adaptive_noise_scale * lat_mean.abs(), min=0.0)
        noise = noise + off * torch.randn((latents.shape[0], latents.shape[1], 1, 1), device=latents.device)
    if ns.multires_noise_iterations:
        noise = pyramid_noise_like(noise, int(ns.multires_noise_iterations), float(ns.multires_noise_discount))
    lo = ns.min_timestep or 0
    hi = ns.max_timestep or sched.config.num_train_timesteps
    b = latents.shape[0]
    if lo >= hi:
        timesteps = torch.full((b,), hi, device=latents.device)
    else:
        # drawn on the CPU generator like sd-scripts' get_timesteps, then moved
        timesteps = torch.randint(lo, hi, (b,), device="cpu").to(latents.device)
    timesteps = timesteps.long()
    if ns.ip_noise_gamma:
        gamma = ns.ip_noise_gamma
        if ns.ip_noise_gamma_random_strength:
            gamma = torch.rand(1, device=latents.device) * gamma
        noisy = sched.add_noise(latents, noise + gamma * torch.randn_like(latents), timesteps)
    else:
        noisy = sched.add_noise(latents, noise, timesteps)
    return noise, noisy, timesteps


def target_for(latents: Any, noise: Any, timesteps: Any, sched: Any, v_parameterization: bool) -> Any:
    """ε for epsilon models, v = sqrt(ᾱ)·ε − sqrt(1−ᾱ)·x0 for v-prediction (§4.8.9)."""
    if v_parameterization:
        return sched.get_velocity(latents, noise, timesteps)
    return noise


def _huber_c(timesteps: Any, sched: Any, ns: NoisePlan) -> Any:
    import torch

    t = timesteps.float()
    if ns.huber_schedule == "constant":
        return torch.full_like(t, ns.huber_c * ns.huber_scale)
    if ns.huber_schedule == "exponential":
        alpha = -math.log(ns.huber_c) / sched.config.num_train_timesteps
        return torch.exp(-alpha * t) * ns.huber_scale
    if ns.huber_schedule == "snr":
        ac = sched.alphas_cumprod.to(timesteps.device)[timesteps]
        sigmas = ((1.0 - ac) / ac) ** 0.5
        return (1 - ns.huber_c) / (1 + sigmas) ** 2 + ns.huber_c
    raise ValueError(f"unknown huber_schedule {ns.huber_schedule!r}")


def per_sample_loss(pred: Any, target: Any, timesteps: Any, sched: Any, ns: NoisePlan,
                    loss_weights: Any, mask: Any = None) -> Any:
    """Per-sample loss after masks, prior weights and SNR weights (§4.9.1-6); the caller takes the mean."""
    import torch

    pred, target = pred.float(), target.float()
    d = pred - target
    if ns.loss_type == "l2":
        loss = d ** 2
    elif ns.loss_type == "l1":
        loss = d.abs()
    elif ns.loss_type in ("huber", "smooth_l1"):
        c = _huber_c(timesteps, sched, ns).view(-1, 1, 1, 1)
        loss = 2 * (torch.sqrt(d ** 2 + c ** 2) - c)
        if ns.loss_type == "huber":
            loss = loss * c
    else:
        raise ValueError(f"unknown loss_type {ns.loss_type!r}")
    if mask is not None:
        loss = loss * mask
    loss = loss.mean(dim=(1, 2, 3)) * loss_weights
    if ns.min_snr_gamma or ns.scale_v_pred_loss_like_noise_pred or ns.v_pred_like_loss or ns.debiased_estimation_loss:
        from lora_compat.semantics import loss_weight

        # One multiplier per sample from the pre-zero-terminal-SNR table, exactly sd-scripts' order (§4.9.6).
        w = [loss_weight(int(t), min_snr_gamma=ns.min_snr_gamma, v_prediction=ns.v_parameterization,
                         scale_v_pred_loss_like_noise_pred=ns.scale_v_pred_loss_like_noise_pred,
                         v_pred_like_loss=ns.v_pred_like_loss,
                         debiased_estimation_loss=ns.debiased_estimation_loss) for t in timesteps.tolist()]
        loss = loss * torch.tensor(w, dtype=loss.dtype, device=loss.device)
    return loss
