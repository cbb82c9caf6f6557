"""Synthetic kohya FLUX LoRA files with sd-scripts' exact keys, shapes and dtypes (tests, the benchmark, demos).

The module set comes from :func:`lora_compat.arch.flux.sd_scripts_flux_network`, so a file written here has the
keys a fresh ``networks.lora_flux`` network saves: ``lora_down`` / ``lora_up`` in the weight dtype and ``alpha``
as sd-scripts' buffer (int64 for argparse's int default alpha or alpha 0 -> rank, float32 otherwise; a
``--save_precision`` run casts every tensor, alphas included, to the save dtype: pass ``alpha_dtype``).
``split_qkv`` modules are written as sd-scripts saves them: downs concatenated ``[n*r, in]``, ups block-diagonal.
Random values; needs numpy (a test/train dependency; the convert/inspect/check commands never import this module).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lora_compat.arch import flux as fa
from lora_compat.weights.safetensors_io import OutTensor, encode_values, write_safetensors

NP_DTYPE = {"F32": "<f4", "F16": "<f2"}


def random_tensor_bytes(rng, shape: tuple[int, ...], dtype: str, scale: float = 0.05) -> bytes:
    """Random normal values of ``shape`` as ``dtype`` bytes (F32, F16 or BF16)."""
    import numpy as np

    n = int(np.prod(shape)) if shape else 1
    vals = rng.standard_normal(n, dtype=np.float32) * scale
    if dtype == "BF16":
        return (vals.view("<u4") >> 16).astype("<u2").tobytes()
    return vals.astype(NP_DTYPE[dtype]).tobytes()


def block_diagonal_up(rng, rows: tuple[int, ...], rank: int, dtype: str, scale: float = 0.05) -> bytes:
    """An up of ``[sum(rows), len(rows) * rank]`` with random diagonal blocks and exact zeros elsewhere."""
    import numpy as np

    n = len(rows)
    out: Any = np.zeros((sum(rows), n * rank), dtype=np.float32)
    off = 0
    for j, r in enumerate(rows):
        out[off:off + r, j * rank:(j + 1) * rank] = rng.standard_normal((r, rank), dtype=np.float32) * scale
        off += r
    if dtype == "BF16":
        return (out.reshape(-1).view("<u4") >> 16).astype("<u2").tobytes()
    return out.astype(NP_DTYPE[dtype]).tobytes()


def flux_network_tensors(net: fa.FluxNetwork, *, dtype: str = "F32", seed: int = 0,
                         alpha_dtype: str | None = None, zeros: bool = False) -> list[OutTensor]:
    """The tensors of ``net``'s state dict (random weights, or all zero), named and shaped like sd-scripts saves
    them."""
    import numpy as np

    from lora_compat.weights.safetensors_io import DTYPE_SIZES

    rng = np.random.default_rng(seed)
    out: list[OutTensor] = []
    for nm in net.modules:
        m = nm.module
        r = nm.file_rank
        down, up = m.lora_shapes(r)
        if zeros:
            size = DTYPE_SIZES[dtype]
            out.append(OutTensor(f"{m.kohya_name}.lora_down.weight", dtype, down, bytes(size * down[0] * down[1])))
            out.append(OutTensor(f"{m.kohya_name}.lora_up.weight", dtype, up, bytes(size * up[0] * up[1])))
        else:
            out += _random_pair(rng, nm, dtype)
        adt = alpha_dtype or nm.alpha_dtype
        out.append(OutTensor(f"{m.kohya_name}.alpha", adt, (), encode_values([nm.alpha], adt)))
    return out


def _random_pair(rng, nm: fa.FluxNetworkModule, dtype: str) -> list[OutTensor]:
    m = nm.module
    down, up = m.lora_shapes(nm.file_rank)
    out = [OutTensor(f"{m.kohya_name}.lora_down.weight", dtype, down, random_tensor_bytes(rng, down, dtype))]
    if nm.split > 1:
        up_bytes = block_diagonal_up(rng, m.split_rows(), nm.rank, dtype)
    else:
        up_bytes = random_tensor_bytes(rng, up, dtype)
    out.append(OutTensor(f"{m.kohya_name}.lora_up.weight", dtype, up, up_bytes))
    return out


def synth_flux_kohya(path: Path | str, spec: fa.FluxNetworkSpec | None = None, *, dtype: str = "F32", seed: int = 0,
                     alpha_dtype: str | None = None, metadata: dict[str, str] | None = None,
                     zeros: bool = False) -> Path:
    """Write a kohya FLUX LoRA with sd-scripts' module set for ``spec`` (default: a default run, CLIP-L trained).

    ``zeros=True`` writes all-zero weights (a freshly initialised up is zero too; fast for key/shape tests).
    """
    spec = spec or fa.FluxNetworkSpec()
    net = fa.sd_scripts_flux_network(spec)
    tensors = flux_network_tensors(net, dtype=dtype, seed=seed, alpha_dtype=alpha_dtype, zeros=zeros)
    meta = {"ss_network_module": "networks.lora_flux", "ss_base_model_version": "flux1",
            "ss_network_dim": str(spec.network_dim), "ss_network_alpha": str(spec.network_alpha),
            "ss_output_name": "synthetic"}
    if spec.network_args:
        import json

        meta["ss_network_args"] = json.dumps(dict(spec.network_args))
    if spec.variant == "chroma":
        meta["ss_model_type"] = "chroma"
    if metadata is not None:
        meta = dict(metadata)
    write_safetensors(path, tensors, meta)
    return Path(path)
