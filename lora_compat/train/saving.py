"""Write trained LoRA weights: kohya layout straight from the PEFT layers (plus optional PEFT folders).

Names come from the targets' kohya names (resolved through :mod:`lora_compat.arch` when the network was
built), shapes are PEFT's, which equal kohya's: Linear ``[r, in]`` / ``[out, r]``, conv ``[r, in, k, k]`` /
``[out, r, 1, 1]`` (reference §6.3). Files are written atomically (temp file in the same folder + rename).

LoHa / LoKr are written in LyCORIS' kohya layout (``network_module=lycoris.kohya``): PEFT's factor tensors
carry LyCORIS' names (``hada_w1_a``, ``lokr_w2_b``, ...) and shapes (key-layouts §2.4), so they are saved
as they are. Scales (§4.1 / §4.2): a consumer applies ``alpha / r`` for LoHa and for LoKr with a
rank-decomposed factor, as PEFT does; for LoKr with two full factors it applies 1 where PEFT applies
``alpha / r``, so that scale is baked into ``lokr_w2`` and ``alpha = r`` is written, as LyCORIS does.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from lora_compat.atomic import write_bytes
from lora_compat.train.metadata import LEGACY_HASH_WINDOW, legacy_hash
from lora_compat.train.network import ADAPTER, LYCORIS_KINDS, PartNetwork, adapter_tensors, lora_layers

DTYPES = {"float": "float32", "fp32": "float32", "float32": "float32", "fp16": "float16", "bf16": "bfloat16"}


def kohya_state_dict(nets: list[PartNetwork], save_precision: str | None = None) -> dict[str, Any]:
    """``{<kohya>.lora_down.weight, .lora_up.weight, .alpha}`` for every module of ``nets``.

    With ``save_precision`` every tensor (alpha included) is cast to it; otherwise the weights keep their
    training dtype and an int alpha stays int64, as sd-scripts saves it (§6.5).
    """
    import torch

    dtype = getattr(torch, DTYPES[save_precision]) if save_precision else None
    out: dict[str, Any] = {}
    for net in nets:
        for t, layer in lora_layers(net):
            if net.kind in LYCORIS_KINDS:
                tensors = lycoris_tensors(t, layer, net.kind)
            else:
                tensors = {"lora_down.weight": layer.lora_A[ADAPTER].weight.detach(),
                           "lora_up.weight": layer.lora_B[ADAPTER].weight.detach(), "alpha": _alpha_tensor(t.alpha)}
            for suffix, tensor in tensors.items():
                tensor = tensor.to("cpu")
                if dtype is not None:
                    tensor = tensor.to(dtype)
                out[f"{t.kohya_name}.{suffix}"] = tensor.contiguous().clone()
    return out


def _alpha_tensor(alpha: float | int) -> Any:
    """The 0-dim ``.alpha`` tensor: int64 for an int alpha (as sd-scripts saves it), else float32."""
    import torch

    is_int = isinstance(alpha, int) and not isinstance(alpha, bool)
    return torch.tensor(alpha, dtype=torch.int64 if is_int else torch.float32)


def lycoris_tensors(target: Any, layer: Any, kind: str) -> dict[str, Any]:
    """LyCORIS kohya-layout tensors (``hada_*`` / ``lokr_*`` + ``alpha``) of one PEFT LoHa / LoKr layer,
    scaled so that every LyCORIS consumer rebuilds the delta PEFT applies (see the module docstring)."""
    import torch

    tensors = {name: p.detach() for name, p in adapter_tensors(layer, kind).items()}
    alpha: float | int = target.alpha
    if kind == "lokr" and "lokr_w1" in tensors and "lokr_w2" in tensors:
        scale = float(target.alpha) / target.rank
        if scale != 1.0:
            w2 = tensors["lokr_w2"]
            tensors["lokr_w2"] = (w2.to(torch.float64) * scale).to(w2.dtype)
        alpha = target.rank  # ignored by consumers; LyCORIS writes the rank here
    tensors["alpha"] = _alpha_tensor(alpha)
    return tensors


def sshs_hashes(state_dict: dict[str, Any], metadata: dict[str, str]) -> tuple[str, str]:
    """(sshs_model_hash, sshs_legacy_hash) computed as sd-scripts does on an in-memory serialization (§7.2)."""
    from safetensors.torch import save

    ss_only = {k: v for k, v in metadata.items() if k.startswith("ss_")}
    data = save(state_dict, ss_only)
    header_len = int.from_bytes(data[:8], "little")
    model_hash = hashlib.sha256(data[8 + header_len:]).hexdigest()
    return model_hash, legacy_hash(data[LEGACY_HASH_WINDOW])


def save_kohya(path: str | os.PathLike[str], state_dict: dict[str, Any], metadata: dict[str, str] | None) -> Path:
    """Write a kohya LoRA ``.safetensors`` (with metadata + sshs hashes) or ``.ckpt``/``.pt`` (no metadata)."""
    import torch

    dest = Path(path)
    if dest.suffix == ".safetensors":
        from safetensors.torch import save

        meta = dict(metadata or {})
        meta["sshs_model_hash"], meta["sshs_legacy_hash"] = sshs_hashes(state_dict, meta)
        write_bytes(dest, save(state_dict, meta))
    else:
        import io

        buf = io.BytesIO()
        torch.save(state_dict, buf)
        write_bytes(dest, buf.getvalue())
    return dest


def save_peft(folder: str | os.PathLike[str], nets: list[PartNetwork]) -> Path:
    """Write each part's adapter as a PEFT folder (``<folder>/<part>/adapter_model.safetensors`` + config)."""
    from peft import LoraConfig, get_peft_model_state_dict
    from safetensors.torch import save

    root = Path(folder)
    for net in nets:
        if not net.targets:
            continue
        sd = get_peft_model_state_dict(net.model, adapter_name=ADAPTER)
        sd = {k: v.detach().cpu().contiguous() for k, v in sd.items()}
        ranks = {t.path: t.rank for t in net.targets}
        alphas = {t.path: float(t.alpha) for t in net.targets}
        r = max(set(ranks.values()), key=list(ranks.values()).count)
        a = max(set(alphas.values()), key=list(alphas.values()).count)
        if net.kind in LYCORIS_KINDS:
            # the injected LoHaConfig / LoKrConfig (Tucker, decompose_* decide the factor shapes PEFT rebuilds)
            cfg = net.model.peft_config[ADAPTER]
        else:
            cfg = LoraConfig(r=r, lora_alpha=a, target_modules=sorted(ranks),
                             rank_pattern={k: v for k, v in ranks.items() if v != r},
                             alpha_pattern={k: v for k, v in alphas.items() if v != a})
        part_dir = root / net.part
        part_dir.mkdir(parents=True, exist_ok=True)
        write_bytes(part_dir / "adapter_model.safetensors", save(sd))
        cfg_dict = cfg.to_dict()
        cfg_dict = json.loads(json.dumps(cfg_dict, default=lambda o: sorted(o) if isinstance(o, set) else str(o)))
        write_bytes(part_dir / "adapter_config.json", json.dumps(cfg_dict, indent=2).encode())
    return root


def weights_digest(state: dict[str, Any]) -> str:
    """SHA-256 over every adapter tensor (sorted by key): equal on all ranks when they are in sync."""
    import hashlib

    import torch

    h = hashlib.sha256()
    for k in sorted(state):
        h.update(k.encode())
        h.update(state[k].contiguous().view(-1).view(dtype=torch.uint8).numpy().tobytes())
    return h.hexdigest()
