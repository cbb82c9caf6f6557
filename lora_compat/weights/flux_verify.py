"""``convert --verify`` for FLUX.1 / Chroma and SD3: both files change every BFL (SAI) module by the same ΔW (needs
torch).

The two sides may cut the model differently (a fused ``img_attn.qkv`` against ``to_q``/``to_k``/``to_v``), so each
side's adapters are merged into ΔW per BFL module, row range by row range (the final layer's rows swapped back into
BFL order), and compared through random probes: ``ΔW @ P`` for a float64 ``P`` of 16 columns (equal products on
random probes mean equal ΔW, and a full 21504 x 3072 ΔW per module is not worth the memory). An uncorrected
``split_qkv`` source is merged at its trained strength (alpha x n), which is what a conversion writes.

The error is judged like :mod:`lora_compat.weights.verify` does: against ``|scale|·|B|·|A|`` applied to ``|P|``,
times 3 unit roundoffs of what the conversion may have rounded (float32, or the written dtype after a cast or a
bake: ``lora_compat.conversion`` of the output says which).
"""

from __future__ import annotations

import math
from typing import Any

from lora_compat.weights.flux_check import split_qkv_weak
from lora_compat.weights.flux_layouts import BFL_ROW_LAYOUTS, FluxLoraFile
from lora_compat.weights.verify_result import MIN_ROUNDOFF, UNIT_ROUNDOFF, VerifyResult, compare_deltas, tensor_of


def _module_products(lf: FluxLoraFile, probes: dict, *, absolute: bool = False) -> dict[str, Any]:
    """kohya name -> ΔW @ P (float64) of every BFL module the file adapts (``absolute``: |s|·|B|·|A|·|P|)."""
    import torch

    weak = {id(m) for m in split_qkv_weak(lf)}
    out: dict[str, Any] = {}
    for m in lf.modules:
        sl = m.info
        module = sl.module
        fan_in = module.in_features * module.kernel * module.kernel   # a Conv2d's down flattens to in*k*k
        key = (module.part, fan_in)
        if key not in probes:
            gen = torch.Generator().manual_seed(fan_in)
            probes[key] = torch.randn(fan_in, 16, generator=gen, dtype=torch.float64)
        down, up = tensor_of(m, m.tensors["down"]), tensor_of(m, m.tensors["up"])
        scale = m.scale * (len(module.parts) if id(m) in weak else 1)
        p = probes[key]
        if absolute:
            down, up, p, scale = down.abs(), up.abs(), p.abs(), abs(scale)
        y = up.reshape(up.shape[0], -1) @ (down.reshape(down.shape[0], -1) @ p) * scale
        if any(p.swap for p in sl.parts) and lf.layout not in BFL_ROW_LAYOUTS:
            half = y.shape[0] // 2
            y = torch.cat([y[half:], y[:half]])
        acc = out.get(module.kohya_name)
        if acc is None:
            acc = out[module.kohya_name] = torch.zeros(module.out_features, 16, dtype=torch.float64)
        acc[sl.offset:sl.offset + y.shape[0]] += y
    return out


def _roundoff(src: FluxLoraFile, dst: FluxLoraFile) -> float:
    """What the conversion may have rounded: float32, or the written dtypes after a cast, a bake or a dtype
    change."""
    from lora_compat.weights.flux_layouts import _lenient_json

    rec = _lenient_json(dst.metadata.get("lora_compat.conversion", "{}"), None, "lora_compat.conversion")
    rec = rec if isinstance(rec, dict) else {}
    dtypes_src = {e.dtype for m in src.modules for e in m.tensors.values()}
    dtypes_dst = {e.dtype for m in dst.modules for e in m.tensors.values()}
    rounded = (rec.get("bake_scale") is True or rec.get("to") == "ai-toolkit" or rec.get("dtype", "keep") != "keep"
               or dtypes_src != dtypes_dst)
    if not rounded:
        return MIN_ROUNDOFF
    return max([MIN_ROUNDOFF] + [UNIT_ROUNDOFF.get(d, 1.0) for d in dtypes_dst])


def verify_flux(src: FluxLoraFile, dst: FluxLoraFile) -> VerifyResult:
    """Compare the ΔW of every BFL module between two parsed FLUX files."""
    from lora_compat.weights.flux_layouts import _lenient_json

    res = VerifyResult()
    probes: dict = {}
    a, b = _module_products(src, probes), _module_products(dst, probes)
    ref = _module_products(src, probes, absolute=True)
    rec = _lenient_json(dst.metadata.get("lora_compat.conversion", "{}"), None, "lora_compat.conversion")
    if isinstance(rec, dict) and rec.get("drop_t5") is True:  # --drop-t5 left them out on purpose
        a = {k: v for k, v in a.items() if not k.startswith("lora_te3_")}
    tol = 3 * _roundoff(src, dst)  # two factors and the scale
    res.tolerance = tol
    for name in sorted(set(a) ^ set(b)):
        res.failures.append((name, "missing from DST" if name in a else "only in DST"))
    for name in a:
        if name not in b:
            continue
        res.modules += 1
        err, scale, problem = compare_deltas(a[name], b[name], ref[name])
        rel = err / scale if scale else (0.0 if err == 0 else math.inf)
        res.max_abs = max(res.max_abs, err)
        res.max_rel = max(res.max_rel, rel)
        if problem:
            res.failures.append((name, problem))
        elif rel > tol:
            res.failures.append((name, f"delta weight differs: max abs {err:.3g}, {rel:.3g} of the delta's scale "
                                       f"(allowed {tol:.2g})"))
    return res
