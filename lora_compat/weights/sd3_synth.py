"""Synthetic kohya SD3/SD3.5 LoRA files with the keys, shapes and dtypes sd-scripts' ``networks.lora_sd3`` saves
(tests, the benchmark).

No golden file holds SD3 keys: the module set is :func:`lora_compat.arch.sd3.sd_scripts_sd3_modules`, derived from
sd-scripts' source (``networks/lora_sd3.py``, ``library/sd3_models.py`` at 48d368f). Per module: ``lora_down.weight``
``[r, in]`` (the 2x2 ``x_embedder.proj`` Conv2d: ``[r, in, 2, 2]``, its up ``[h, r, 1, 1]``), ``lora_up.weight``
``[out, r]`` in the weight dtype, and ``alpha`` as sd-scripts' buffer (int64 for argparse's int default alpha 1,
float32 for a given float alpha). ``split_qkv`` modules (every ``joint_blocks`` ``qkv``) are saved as sd-scripts'
``state_dict()`` merges them: downs concatenated ``[3r, in]``, up block-diagonal, alpha unchanged. Random values;
needs numpy (the convert/inspect/check commands never import this module).
"""

from __future__ import annotations

import json
from pathlib import Path

from lora_compat.arch import sd3
from lora_compat.weights.flux_synth import block_diagonal_up, random_tensor_bytes
from lora_compat.weights.safetensors_io import OutTensor, encode_values, write_safetensors


def synth_sd3_kohya(path: Path | str, table: sd3.Sd3Table | None = None, *, rank: int = 2,
                    alpha: float | int = 1, dtype: str = "F32", seed: int = 0, text_encoders: bool = True,
                    train_t5xxl: bool = False, emb_dims: tuple[int, ...] | None = None, split_qkv: bool = False,
                    ranks: dict[str, int] | None = None, blocks: tuple[int, ...] | None = None) -> Path:
    """Write an sd-scripts SD3 LoRA over ``table`` (default: SD3 medium); ``ranks`` overrides per kohya name
    (0 drops a module), ``blocks`` keeps only those joint blocks (``train_block_indices``)."""
    import numpy as np

    table = table or sd3.sd3_table()
    rng = np.random.default_rng(seed)
    alpha_dtype = "I64" if isinstance(alpha, int) and not isinstance(alpha, bool) else "F32"
    tensors: list[OutTensor] = []
    for m in sd3.sd_scripts_sd3_modules(table, text_encoders=text_encoders, train_t5xxl=train_t5xxl,
                                        emb_dims=emb_dims):
        if blocks is not None and m.group == "joint" and m.block not in blocks:
            continue
        r = (ranks or {}).get(m.kohya_name, rank if m.in_dims_index is None or emb_dims is None
                             else emb_dims[m.in_dims_index])   # an emb_dims entry is its modules' rank
        if not r:
            continue
        name = m.kohya_name
        split = split_qkv and m.group == "joint" and m.bfl_path.endswith("qkv")
        if split:
            rows = m.split_rows()
            down = random_tensor_bytes(rng, (len(rows) * r, m.in_features), dtype)
            up = block_diagonal_up(rng, rows, r, dtype)
            dshape: tuple[int, ...] = (len(rows) * r, m.in_features)
            ushape: tuple[int, ...] = (m.out_features, len(rows) * r)
        else:
            k = m.kernel
            dshape = (r, m.in_features, k, k) if k > 1 else (r, m.in_features)
            ushape = (m.out_features, r, 1, 1) if k > 1 else (m.out_features, r)
            down, up = random_tensor_bytes(rng, dshape, dtype), random_tensor_bytes(rng, ushape, dtype)
        tensors += [OutTensor(f"{name}.lora_down.weight", dtype, dshape, down),
                    OutTensor(f"{name}.lora_up.weight", dtype, ushape, up),
                    OutTensor(f"{name}.alpha", alpha_dtype, (), encode_values([alpha], alpha_dtype))]
    meta = {"ss_network_module": "networks.lora_sd3", "ss_network_dim": str(rank), "ss_network_alpha": str(alpha)}
    if table.variant in sd3.BASE_MODEL_VERSION and table.widths == sd3.WIDTHS[table.variant]:
        meta["ss_base_model_version"] = sd3.BASE_MODEL_VERSION[table.variant]
        meta["modelspec.architecture"] = sd3.MODELSPEC_ARCH[table.variant]
    if split_qkv:
        meta["ss_network_args"] = json.dumps({"split_qkv": "True"})
    write_safetensors(path, tensors, meta)
    return Path(path)
