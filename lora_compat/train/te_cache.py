"""SDXL text-encoder-output disk cache (``cache_text_encoder_outputs_to_disk``) in sd-scripts' files
(``SdxlTextEncoderOutputsCachingStrategy`` in ``library/strategy_sdxl.py``), interchangeable with sd-scripts' own.

One file per image, ``<image without extension>_te_outputs.npz`` beside it, holding one caption's outputs without a
batch axis: ``hidden_state1`` (tokens, TE1 width: TE1's penultimate hidden states), ``hidden_state2`` (tokens,
TE2 width) and ``pool2`` (TE2's projected pooled output); bf16 outputs are stored as float32, as sd-scripts does.

sd-scripts' validity check only looks for those three keys, so a changed caption or model silently reuses a stale
file. lora-compat adds two keys sd-scripts does not read — ``lc_caption`` (the caption encoded) and ``lc_settings``
(what else the outputs depend on: ``max_token_length``, the mixed precision and a fingerprint of the text-encoder
weights) — and re-encodes a file whose record differs or is absent (a file sd-scripts wrote is encoded again once,
then read on every later run). Files are written atomically; numpy is imported lazily.
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any

from lora_compat.atomic import atomic_writer

TE_OUTPUTS_SUFFIX = "_te_outputs.npz"
SD_SCRIPTS_KEYS = ("hidden_state1", "hidden_state2", "pool2")


def te_outputs_npz_path(image_path: str) -> str:
    """``<image without extension>_te_outputs.npz`` (sd-scripts' ``get_outputs_npz_path``)."""
    return os.path.splitext(image_path)[0] + TE_OUTPUTS_SUFFIX


def text_encoder_fingerprint(modules: list[Any]) -> str:
    """A cheap digest of the text encoders' weights: every parameter's name, shape, dtype and its first and last
    64 values (a different base model or text encoder gives a different digest without hashing gigabytes)."""
    import torch

    h = hashlib.sha256()
    for i, module in enumerate(modules):
        for name, p in module.state_dict().items():
            flat = p.detach().reshape(-1)
            h.update(f"{i}.{name}:{tuple(p.shape)}:{p.dtype}".encode())
            for part in (flat[:64], flat[-64:]):
                h.update(part.to(torch.float32).cpu().numpy().tobytes())
    return h.hexdigest()


def cache_settings(*, max_token_length: int | None, mixed_precision: str, fingerprint: str) -> str:
    """The ``lc_settings`` record: what the outputs depend on besides the caption."""
    return json.dumps({"max_token_length": max_token_length, "mixed_precision": mixed_precision,
                       "text_encoders": fingerprint}, sort_keys=True)


def load_te_outputs(npz_path: str, caption: str, settings: str) -> tuple[Any, Any, Any] | None:
    """``(hidden_state1, hidden_state2, pool2)`` numpy arrays when ``npz_path`` holds this caption's outputs made
    with these settings; None when it is absent, damaged, stale or without lora-compat's record."""
    if not os.path.exists(npz_path):
        return None
    import numpy as np

    try:
        with np.load(npz_path, allow_pickle=False) as npz:
            if not all(k in npz.files for k in (*SD_SCRIPTS_KEYS, "lc_caption", "lc_settings")):
                return None
            if str(npz["lc_caption"]) != caption or str(npz["lc_settings"]) != settings:
                return None
            return npz["hidden_state1"], npz["hidden_state2"], npz["pool2"]
    except Exception:  # a damaged cache is encoded again
        return None


def save_te_outputs(npz_path: str, outputs: tuple[Any, Any, Any], caption: str, settings: str) -> None:
    """Write one caption's ``(hidden_state1, hidden_state2, pool2)`` tensors (no batch axis) atomically."""
    import numpy as np
    import torch

    def arr(t: Any) -> Any:
        t = t.detach()
        return (t.float() if t.dtype == torch.bfloat16 else t).cpu().numpy()

    hs1, hs2, pool2 = outputs
    with atomic_writer(npz_path, durable=False) as fh:   # a cache: rebuilt if lost
        np.savez(fh, hidden_state1=arr(hs1), hidden_state2=arr(hs2), pool2=arr(pool2),
                 lc_caption=np.array(caption), lc_settings=np.array(settings))
