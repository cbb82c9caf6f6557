"""FLUX.1 latent packing and position ids (sd-scripts ``library/flux_utils.py``; diffusers' FluxPipeline does
the same): 2x2 patches of a ``[b, c, 2h, 2w]`` latent become ``h*w`` tokens of ``4c`` channels.
"""

from __future__ import annotations

from typing import Any


def pack_latents(x: Any) -> Any:
    """``[b, c, (h 2), (w 2)] -> [b, (h w), (c 2 2)]`` (channel-major inside each token)."""
    b, c, hh, ww = x.shape
    h, w = hh // 2, ww // 2
    return x.reshape(b, c, h, 2, w, 2).permute(0, 2, 4, 1, 3, 5).reshape(b, h * w, c * 4)


def unpack_latents(x: Any, packed_latent_height: int, packed_latent_width: int) -> Any:
    """Inverse of :func:`pack_latents`: ``[b, (h w), (c 2 2)] -> [b, c, (h 2), (w 2)]``."""
    b, n, cpp = x.shape
    h, w, c = packed_latent_height, packed_latent_width, cpp // 4
    if n != h * w or cpp % 4:
        raise ValueError(f"cannot unpack {tuple(x.shape)} into a {h}x{w} token grid of 2x2 patches")
    return x.reshape(b, h, w, c, 2, 2).permute(0, 3, 1, 4, 2, 5).reshape(b, c, h * 2, w * 2)


def prepare_img_ids(batch_size: int, packed_latent_height: int, packed_latent_width: int) -> Any:
    """``[b, h*w, 3]`` float32 ids ``(0, row, column)`` of each image token (row-major)."""
    import torch

    img_ids = torch.zeros(packed_latent_height, packed_latent_width, 3)
    img_ids[..., 1] = img_ids[..., 1] + torch.arange(packed_latent_height)[:, None]
    img_ids[..., 2] = img_ids[..., 2] + torch.arange(packed_latent_width)[None, :]
    return img_ids.reshape(1, packed_latent_height * packed_latent_width, 3).repeat(batch_size, 1, 1)


def guidance_vector(guidance_scale: float, batch_size: int, device: Any = None) -> Any:
    """The ``[b]`` float32 guidance input built from ``--guidance_scale`` (passed even to schnell, which has
    no guidance embedder and ignores it)."""
    import torch

    return torch.full((batch_size,), float(guidance_scale), device=device)
