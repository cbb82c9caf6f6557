"""Synthetic kohya LoRA files with sd-scripts' exact module set (for tests, the benchmark and demos).

Random values, real names and shapes (from :mod:`lora_compat.arch`). Needs numpy (a dev/test dependency; the
convert/inspect/check commands never import this module).
"""

from __future__ import annotations

from pathlib import Path

from lora_compat import arch as archmod
from lora_compat.weights.safetensors_io import OutTensor, encode_values, write_safetensors

NP_DTYPE = {"F32": "<f4", "F16": "<f2"}


def _random_bytes(rng, shape: tuple[int, ...], dtype: str, scale: float = 0.05) -> bytes:
    import numpy as np

    n = int(np.prod(shape)) if shape else 1
    vals = rng.standard_normal(n, dtype=np.float32) * scale
    if dtype == "BF16":
        return (vals.view("<u4") >> 16).astype("<u2").tobytes()
    return vals.astype(NP_DTYPE[dtype]).tobytes()


def synth_kohya(path: Path | str, arch: str, *, algo: str = "lora", rank: int = 4, conv_rank: int | None = None,
                alpha: float | None = 1.0, conv_alpha: float | None = None, dtype: str = "F16", seed: int = 0,
                per_module: bool = False, te: bool = True, metadata: dict[str, str] | None = None,
                alpha_dtype: str | None = None, modules: list | None = None) -> Path:
    """Write a kohya LoRA/LoCon with sd-scripts' module set for ``arch``.

    ``per_module=True`` gives every module its own rank (1..rank) and alpha (random, never 0) so that alpha handling
    is exercised. ``alpha=None`` writes no alpha tensors. ``alpha_dtype`` defaults to ``dtype`` (as sd-scripts
    saves it).
    """
    import numpy as np

    rng = np.random.default_rng(seed)
    conv_rank = conv_rank or rank
    conv_alpha = alpha if conv_alpha is None else conv_alpha
    mods = modules if modules is not None else archmod.kohya_modules(arch, algo, te=te)
    tensors: list[OutTensor] = []
    for m in mods:
        r = conv_rank if m.is_conv3x3 else rank
        a = conv_alpha if m.is_conv3x3 else alpha
        if per_module:
            r = int(rng.integers(1, r + 1))
            a = float(np.float16(rng.uniform(0.25, 2 * r)))
        down, up = m.lora_shapes(r)
        tensors.append(OutTensor(f"{m.kohya_name}.lora_down.weight", dtype, down, _random_bytes(rng, down, dtype)))
        tensors.append(OutTensor(f"{m.kohya_name}.lora_up.weight", dtype, up, _random_bytes(rng, up, dtype)))
        if a is not None:
            adt = alpha_dtype or dtype
            tensors.append(OutTensor(f"{m.kohya_name}.alpha", adt, (), encode_values([a], adt)))
    meta = {"ss_network_module": "networks.lora", "ss_network_dim": str(rank),
            "ss_network_alpha": str(alpha), "ss_base_model_version":
                {"sd1": "sd_v1", "sd2": "sd_v2", "sdxl": "sdxl_base_v1-0"}[arch], "ss_output_name": "synthetic"}
    if metadata is not None:
        meta = dict(metadata)
    write_safetensors(path, tensors, meta)
    return Path(path)
