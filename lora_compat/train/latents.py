"""Latent cache files in sd-scripts' ``.npz`` layout (``SdSdxlLatentsCachingStrategy``, reference §4.6.6).

A cache file sits beside its image: ``<stem>_<W:04d>x<H:04d>_sd.npz`` (SD1/SD2) or ``..._sdxl.npz``
(SDXL), where ``W x H`` is the *original* image size; an old-style ``<stem>.npz`` is used when it exists.
Keys: ``latents`` (C,h,w float32, not yet multiplied by the VAE scaling factor), ``original_size``
(``[w, h]``), ``crop_ltrb`` (4 ints), and optionally ``latents_flipped`` and ``alpha_mask``. Files we write
are therefore interchangeable with sd-scripts'.

Deliberate difference: sd-scripts only checks that the keys exist, so a changed ``resolution`` or bucket
setting silently reuses stale latents; :func:`is_cache_valid` also checks the latent shape against the
bucket (``bucket // 8``) and a stale file is re-encoded.

numpy is imported lazily (this module is only used by the training engine).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from lora_compat.atomic import atomic_writer

SD_OLD_SUFFIX = ".npz"
SD_SUFFIX = "_sd.npz"
SDXL_SUFFIX = "_sdxl.npz"
LATENT_STRIDE = 8


def latents_npz_path(image_path: str, image_size: tuple[int, int], *, sdxl: bool) -> str:
    """Where sd-scripts looks for (and writes) the latent cache of ``image_path`` (size ``(w, h)``)."""
    stem = os.path.splitext(image_path)[0]
    old = stem + SD_OLD_SUFFIX
    if os.path.exists(old):
        return old
    return f"{stem}_{image_size[0]:04d}x{image_size[1]:04d}" + (SDXL_SUFFIX if sdxl else SD_SUFFIX)


@dataclass
class CachedLatents:
    """One image's cached latents (numpy arrays or tensors, as loaded/produced)."""

    latents: Any
    original_size: tuple[int, int]          # (w, h) before resizing
    crop_ltrb: tuple[int, int, int, int]
    latents_flipped: Any = None
    alpha_mask: Any = None


def is_cache_valid(npz_path: str, bucket_reso: tuple[int, int], *, flip_aug: bool, alpha_mask: bool) -> bool:
    """True when ``npz_path`` exists, has the keys training needs, and latents of the bucket's shape."""
    if not os.path.exists(npz_path):
        return False
    import numpy as np

    try:
        with np.load(npz_path) as npz:
            if "latents" not in npz:
                return False
            if flip_aug and "latents_flipped" not in npz:
                return False
            if alpha_mask and "alpha_mask" not in npz:
                return False
            expected = (bucket_reso[1] // LATENT_STRIDE, bucket_reso[0] // LATENT_STRIDE)
            return tuple(npz["latents"].shape[-2:]) == expected
    except Exception:  # a truncated/corrupt file is simply re-encoded, as sd-scripts does
        return False


def load_cache(npz_path: str) -> CachedLatents:
    """Read a cache file (sd-scripts' ``load_latents_from_disk``)."""
    import numpy as np

    with np.load(npz_path) as npz:
        latents = npz["latents"]
        original = tuple(int(v) for v in npz["original_size"]) if "original_size" in npz else (0, 0)
        crop = tuple(int(v) for v in npz["crop_ltrb"]) if "crop_ltrb" in npz else (0, 0, 0, 0)
        flipped = npz.get("latents_flipped", None)
        mask = npz.get("alpha_mask", None)
    return CachedLatents(latents, (original[0], original[1]), crop, flipped, mask)  # type: ignore[arg-type]


def save_cache(npz_path: str, entry: CachedLatents) -> None:
    """Write a cache file atomically (temp file in the same folder, then ``os.replace``)."""
    import numpy as np

    arrays: dict[str, Any] = {
        "latents": _as_numpy(entry.latents),
        "original_size": np.array(entry.original_size),
        "crop_ltrb": np.array(entry.crop_ltrb),
    }
    if entry.latents_flipped is not None:
        arrays["latents_flipped"] = _as_numpy(entry.latents_flipped)
    if entry.alpha_mask is not None:
        arrays["alpha_mask"] = _as_numpy(entry.alpha_mask)
    with atomic_writer(npz_path, durable=False) as fh:  # a cache: rebuilt if lost, so no fsync
        np.savez(fh, **arrays)


def _as_numpy(value: Any) -> Any:
    import numpy as np

    if hasattr(value, "detach"):
        value = value.detach().float().cpu().numpy()
    return np.asarray(value, dtype=np.float32)


class LatentCacheFiles:
    """Where and how a family's latent cache files are named, checked, written and read (sd-scripts' latents
    caching strategy). This one is SD1/SD2/SDXL's (``_sd.npz`` / ``_sdxl.npz``, one resolution per file); FLUX.1
    has its own (:class:`lora_compat.train.flux.cache.FluxLatentCacheFiles`)."""

    def __init__(self, *, sdxl: bool = False) -> None:
        self.sdxl = sdxl

    def path(self, image_path: str, image_size: tuple[int, int]) -> str:
        """The cache file of an image of original size ``(w, h)``."""
        return latents_npz_path(image_path, image_size, sdxl=self.sdxl)

    def is_valid(self, npz_path: str, bucket_reso: tuple[int, int], *, flip_aug: bool, alpha_mask: bool) -> bool:
        """True when the file holds what training at ``bucket_reso`` needs."""
        return is_cache_valid(npz_path, bucket_reso, flip_aug=flip_aug, alpha_mask=alpha_mask)

    def save(self, npz_path: str, entry: CachedLatents) -> None:
        """Write (or add to) the cache file."""
        save_cache(npz_path, entry)

    def load(self, npz_path: str, bucket_reso: tuple[int, int]) -> CachedLatents:
        """The latents of ``bucket_reso`` from the file."""
        return load_cache(npz_path)
