"""``convert --verify`` for FLUX.1 / Chroma: both files change every BFL module by the same ΔW (needs torch).

The two sides may cut the model differently (a fused ``img_attn.qkv`` against ``to_q``/``to_k``/``to_v``), so each
side's adapters are merged into ΔW per BFL module, row range by row range (the final layer's rows swapped back into
BFL order), and compared through random probes: ``ΔW @ P`` for a float64 ``P`` of 16 columns (equal products on
random probes mean equal ΔW, and a full 21504 x 3072 ΔW per module is not worth the memory). An uncorrected
``split_qkv`` source is merged at its trained strength (alpha x n), which is what a conversion writes.
"""

from __future__ import annotations

from lora_compat.weights.flux_check import _split_qkv_weak
from lora_compat.weights.flux_convert import BFL_ROW_LAYOUTS
from lora_compat.weights.flux_layouts import FluxLoraFile
from lora_compat.weights.verify import TOLERANCE, VerifyResult, _least_precise, _tensor


def _module_products(lf: FluxLoraFile, probes: dict) -> dict[str, object]:
    """kohya name -> ΔW @ P (float64) of every BFL module the file adapts."""
    import torch

    weak = {id(m) for m in _split_qkv_weak(lf)}
    out: dict[str, object] = {}
    for m in lf.modules:
        sl = m.info
        module = sl.module
        key = (module.part, module.in_features)
        if key not in probes:
            gen = torch.Generator().manual_seed(module.in_features)
            probes[key] = torch.randn(module.in_features, 16, generator=gen, dtype=torch.float64)
        down, up = _tensor(m, m.tensors["down"]), _tensor(m, m.tensors["up"])
        scale = m.scale * (len(module.parts) if id(m) in weak else 1)
        y = up.reshape(up.shape[0], -1) @ (down.reshape(down.shape[0], -1) @ probes[key]) * scale
        if any(p.swap for p in sl.parts) and lf.layout not in BFL_ROW_LAYOUTS:
            half = y.shape[0] // 2
            y = torch.cat([y[half:], y[:half]])
        acc = out.get(module.kohya_name)
        if acc is None:
            acc = out[module.kohya_name] = torch.zeros(module.out_features, 16, dtype=torch.float64)
        acc[sl.offset:sl.offset + y.shape[0]] += y
    return out


def verify_flux(src: FluxLoraFile, dst: FluxLoraFile) -> VerifyResult:
    """Compare the ΔW of every BFL module between two parsed FLUX files."""
    import json

    res = VerifyResult()
    probes: dict = {}
    a, b = _module_products(src, probes), _module_products(dst, probes)
    try:
        dropped_t5 = json.loads(dst.metadata.get("lora_compat.conversion", "{}")).get("drop_t5") is True
    except (json.JSONDecodeError, AttributeError):
        dropped_t5 = False
    if dropped_t5:  # --drop-t5 left them out on purpose
        a = {k: v for k, v in a.items() if not k.startswith("lora_te3_")}
    res.tolerance = max(TOLERANCE[_least_precise(src)], TOLERANCE[_least_precise(dst)])
    for name in sorted(set(a) ^ set(b)):
        res.failures.append((name, "missing from DST" if name in a else "only in DST"))
    for name in a:
        if name not in b:
            continue
        res.modules += 1
        err = (a[name] - b[name]).abs().max().item()
        ref = a[name].abs().max().item()
        rel = err / ref if ref else (0.0 if err == 0 else float("inf"))
        res.max_abs = max(res.max_abs, err)
        res.max_rel = max(res.max_rel, rel)
        if rel > res.tolerance:
            res.failures.append((name, f"delta weight differs: max abs {err:.3g}, rel {rel:.3g}"))
    return res
