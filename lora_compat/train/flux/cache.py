"""FLUX.1 latent and text-encoder-output caches in sd-scripts' files (``strategy_flux``), interchangeable with
sd-scripts' own.

Latents: ``<stem>_<W:04d>x<H:04d>_flux.npz`` beside the image (W x H = the image's original size); one file holds
every resolution the image was cached at, each under keys suffixed ``_<h>x<w>`` (latent height x width):
``latents_<h>x<w>`` (16, h, w) float32 after the AE's shift and scale, ``original_size_<h>x<w>`` ``[w, h]``,
``crop_ltrb_<h>x<w>``, optionally ``latents_flipped_<h>x<w>`` and ``alpha_mask_<h>x<w>``.

Text-encoder outputs: ``<stem>_flux_te.npz`` with ``l_pooled`` (768), ``t5_out`` (n, 4096), ``txt_ids`` (n, 3),
``t5_attn_mask`` (n) and ``apply_t5_attn_mask``; a file made with the other ``apply_t5_attn_mask`` is stale.

Files are written atomically; numpy is imported lazily.
"""

from __future__ import annotations

import os
from typing import Any

from lora_compat.atomic import atomic_writer
from lora_compat.train.latents import CachedLatents

LATENTS_SUFFIX = "_flux.npz"
TE_SUFFIX = "_flux_te.npz"
LATENT_STRIDE = 8


def latents_npz_path(image_path: str, image_size: tuple[int, int]) -> str:
    """``<stem>_<W:04d>x<H:04d>_flux.npz`` for an image of original size ``(w, h)``."""
    return f"{os.path.splitext(image_path)[0]}_{image_size[0]:04d}x{image_size[1]:04d}{LATENTS_SUFFIX}"


def _suffix(bucket_reso: tuple[int, int]) -> str:
    # bucket_reso is (W, H); the key suffix is latent H x W
    return f"_{bucket_reso[1] // LATENT_STRIDE}x{bucket_reso[0] // LATENT_STRIDE}"


def _np(value: Any) -> Any:
    import numpy as np

    if hasattr(value, "detach"):
        value = value.detach().float().cpu().numpy()
    return np.asarray(value, dtype=np.float32)


def is_latents_cache_valid(npz_path: str, bucket_reso: tuple[int, int], *, flip_aug: bool, alpha_mask: bool) -> bool:
    """True when ``npz_path`` holds this bucket's latents (and the flipped latents / mask when needed)."""
    if not os.path.exists(npz_path):
        return False
    import numpy as np

    s = _suffix(bucket_reso)
    try:
        with np.load(npz_path) as npz:
            return ("latents" + s in npz and (not flip_aug or "latents_flipped" + s in npz)
                    and (not alpha_mask or "alpha_mask" + s in npz))
    except Exception:  # a damaged cache is re-encoded
        return False


def save_latents(npz_path: str, entry: CachedLatents) -> None:
    """Add ``entry`` (latents ``[16, h, w]``) to ``npz_path``, keeping the other resolutions already there."""
    import numpy as np

    arrays: dict[str, Any] = {}
    if os.path.exists(npz_path):
        try:
            with np.load(npz_path) as old:
                arrays = {k: old[k] for k in old.files}
        except Exception:
            arrays = {}
    latents = _np(entry.latents)
    s = f"_{latents.shape[-2]}x{latents.shape[-1]}"
    arrays["latents" + s] = latents
    arrays["original_size" + s] = np.array(entry.original_size)
    arrays["crop_ltrb" + s] = np.array(entry.crop_ltrb)
    if entry.latents_flipped is not None:
        arrays["latents_flipped" + s] = _np(entry.latents_flipped)
    if entry.alpha_mask is not None:
        arrays["alpha_mask" + s] = _np(entry.alpha_mask)
    with atomic_writer(npz_path, durable=False) as fh:  # a cache: rebuilt if lost
        np.savez(fh, **arrays)


def load_latents(npz_path: str, bucket_reso: tuple[int, int]) -> CachedLatents:
    """The latents of one bucket resolution from ``npz_path`` (``ValueError`` when absent)."""
    import numpy as np

    s = _suffix(bucket_reso)
    with np.load(npz_path) as npz:
        if "latents" + s not in npz:
            raise ValueError(f"latents{s} not found in {npz_path}")
        original = [int(v) for v in npz["original_size" + s]]
        crop = [int(v) for v in npz["crop_ltrb" + s]]
        flipped = npz["latents_flipped" + s] if "latents_flipped" + s in npz.files else None
        mask = npz["alpha_mask" + s] if "alpha_mask" + s in npz.files else None
        return CachedLatents(npz["latents" + s], (original[0], original[1]), (crop[0], crop[1], crop[2], crop[3]),
                             flipped, mask)


def te_outputs_npz_path(image_path: str) -> str:
    """``<stem>_flux_te.npz``."""
    return os.path.splitext(image_path)[0] + TE_SUFFIX


def is_te_cache_valid(npz_path: str, *, apply_t5_attn_mask: bool) -> bool:
    """True when the file has every output and was made with the same ``apply_t5_attn_mask``."""
    if not os.path.exists(npz_path):
        return False
    import numpy as np

    try:
        with np.load(npz_path) as npz:
            if not all(k in npz for k in ("l_pooled", "t5_out", "txt_ids", "t5_attn_mask", "apply_t5_attn_mask")):
                return False
            return bool(npz["apply_t5_attn_mask"]) == bool(apply_t5_attn_mask)
    except Exception:
        return False


def save_te_outputs(npz_path: str, outputs: tuple[Any, Any, Any, Any], *, apply_t5_attn_mask: bool) -> None:
    """Write one caption's ``(l_pooled, t5_out, txt_ids, t5_attn_mask)`` (per-sample, no batch axis)."""
    import numpy as np

    l_pooled, t5_out, txt_ids, mask = outputs
    mask_np = mask.detach().cpu().numpy() if hasattr(mask, "detach") else np.asarray(mask)
    with atomic_writer(npz_path, durable=False) as fh:
        np.savez(fh, l_pooled=_np(l_pooled), t5_out=_np(t5_out), txt_ids=_np(txt_ids), t5_attn_mask=mask_np,
                 apply_t5_attn_mask=apply_t5_attn_mask)


def load_te_outputs(npz_path: str) -> tuple[Any, Any, Any, Any]:
    """``(l_pooled, t5_out, txt_ids, t5_attn_mask)`` numpy arrays of one caption."""
    import numpy as np

    with np.load(npz_path) as npz:
        return npz["l_pooled"], npz["t5_out"], npz["txt_ids"], npz["t5_attn_mask"]


class TextEncoderOutputCache:
    """Text-encoder outputs per caption, in memory and optionally on disk (``--cache_text_encoder_outputs``
    / ``_to_disk``): :meth:`get` encodes a caption once; ``encode`` maps a list of captions to batched
    ``(l_pooled, t5_out, txt_ids, t5_attn_mask)`` tensors."""

    def __init__(self, encode: Any, *, apply_t5_attn_mask: bool) -> None:
        self.encode = encode
        self.apply_t5_attn_mask = apply_t5_attn_mask
        self.memory: dict[str, tuple[Any, Any, Any, Any]] = {}

    def get(self, caption: str, npz_path: str | None = None) -> tuple[Any, Any, Any, Any]:
        """The outputs of ``caption`` (from memory, from ``npz_path`` when valid, or encoded and stored)."""
        import torch

        if caption in self.memory:
            out = self.memory[caption]
            if npz_path is not None and not is_te_cache_valid(npz_path, apply_t5_attn_mask=self.apply_t5_attn_mask):
                save_te_outputs(npz_path, out, apply_t5_attn_mask=self.apply_t5_attn_mask)  # one file per image
            return out
        if npz_path is not None and is_te_cache_valid(npz_path, apply_t5_attn_mask=self.apply_t5_attn_mask):
            out = tuple(torch.from_numpy(a) for a in load_te_outputs(npz_path))
        else:
            with torch.no_grad():
                batch = self.encode([caption])
            out = tuple(t[0].detach().float().cpu() if t.is_floating_point() else t[0].cpu() for t in batch)
            if npz_path is not None:
                save_te_outputs(npz_path, out, apply_t5_attn_mask=self.apply_t5_attn_mask)
        self.memory[caption] = out
        return out

    @staticmethod
    def collate(items: list[tuple[Any, Any, Any, Any]]) -> tuple[Any, Any, Any, Any]:
        """Stack per-caption outputs into a batch."""
        import torch

        return tuple(torch.stack([it[i] for it in items]) for i in range(4))


class FluxLatentCacheFiles:
    """FLUX.1's latent cache files for the engine's dataset (the interface of
    :class:`lora_compat.train.latents.LatentCacheFiles`): sd-scripts' ``FluxLatentsCachingStrategy`` names and keys."""

    def path(self, image_path: str, image_size: tuple[int, int]) -> str:
        """``<stem>_<W:04d>x<H:04d>_flux.npz``."""
        return latents_npz_path(image_path, image_size)

    def is_valid(self, npz_path: str, bucket_reso: tuple[int, int], *, flip_aug: bool, alpha_mask: bool) -> bool:
        """True when the file has this bucket's latents (and flipped latents / mask when needed)."""
        return is_latents_cache_valid(npz_path, bucket_reso, flip_aug=flip_aug, alpha_mask=alpha_mask)

    def save(self, npz_path: str, entry: CachedLatents) -> None:
        """Add this resolution's entry to the file."""
        save_latents(npz_path, entry)

    def load(self, npz_path: str, bucket_reso: tuple[int, int]) -> CachedLatents:
        """The latents of ``bucket_reso``."""
        return load_latents(npz_path, bucket_reso)
