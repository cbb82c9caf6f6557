"""``convert --verify``: prove SRC and DST change every base module by the same ΔW (needs torch, imported lazily).

ΔW per module = scale · (B·A) for LoRA/LoCon (Tucker ``lora_mid`` composed in), the Hadamard product for LoHa, the
Kronecker product for LoKr; DoRA magnitudes are compared value by value (the merged DoRA weight needs the base
model, which a LoRA file does not carry; equal ΔW and equal magnitudes give an equal merge).

The error is judged against the delta's own scale, not against ``max |ΔW|``: rounding each of the k factors of a
product term to a dtype with unit roundoff u moves every element of ΔW by at most about k·u·(|scale|·|B|·|A|)
(absolute values: the same product with every factor made non-negative), however much the terms of ΔW cancel. So a
module passes when ``max |ΔW_src - ΔW_dst| <= (k + 1) · u · max(|scale|·|B|·|A|)`` (one more rounding for a baked
scale), u being the roundoff of the dtypes the conversion wrote (float32 at least: alphas are float32). An exact
``--dtype fp16`` conversion passes; a wrong scale, a swapped or transposed factor fails.
"""

from __future__ import annotations

import math
from pathlib import Path

from lora_compat.errors import UserError
from lora_compat.weights.flux_layouts import FluxLoraFile
from lora_compat.weights.layouts import AdapterModule, LoraFile
from lora_compat.weights.reader import open_lora
from lora_compat.weights.verify_result import (
    MIN_ROUNDOFF,
    UNIT_ROUNDOFF,
    VerifyResult,
    compare_deltas,
    require_torch,
    tensor_of,
)


def _weight_shape(m: AdapterModule, t: dict) -> tuple[int, ...]:
    """The base weight's shape as the tensors imply it (custom-width models differ from the pinned table)."""
    k = m.info.kernel
    if m.algo == "lora":
        fout, fin = t["up"].shape[0], t["down"].shape[1]
    elif m.algo == "loha":
        if "t1" in t:
            fout, fin = t["w1_a"].shape[1], t["w1_b"].shape[1]
        else:
            fout, fin = t["w1_a"].shape[0], t["w1_b"].shape[1] // (k * k)
    else:
        w1 = t["w1"].shape if "w1" in t else (t["w1_a"].shape[0], t["w1_b"].shape[1])
        if "w2" in t:
            c, d = t["w2"].shape[:2]
        elif "t2" in t:
            c, d = t["w2_a"].shape[1], t["w2_b"].shape[1]
        else:
            c, d = t["w2_a"].shape[0], t["w2_b"].shape[1] // (k * k)
        fout, fin = w1[0] * c, w1[1] * d
    return (fout, fin) if m.info.kind == "linear" else (fout, fin, k, k)


def delta_weight(m: AdapterModule, *, absolute: bool = False):
    """scale · ΔW of one module as a float64 tensor shaped like the base weight.

    ``absolute``: the same product with every factor and the scale replaced by its absolute value (the bound the
    rounding error of ΔW is measured against)."""
    import torch

    info = m.info
    t = {role: tensor_of(m, e) for role, e in m.tensors.items()}
    if absolute:
        t = {role: x.abs() for role, x in t.items()}
    shape = _weight_shape(m, t)
    if m.algo == "lora":
        down, up = t["down"], t["up"]
        r = down.shape[0]
        if "mid" in t:
            dw = torch.einsum("or,rshw,si->oihw", up.reshape(up.shape[0], r), t["mid"], down.reshape(r, -1))
        else:
            dw = up.reshape(up.shape[0], r) @ down.reshape(r, -1)
    elif m.algo == "loha":
        def factor(i: str):
            if f"t{i}" in t:
                return torch.einsum("ijhw,ip,jr->prhw", t[f"t{i}"], t[f"w{i}_a"], t[f"w{i}_b"])
            return t[f"w{i}_a"] @ t[f"w{i}_b"]
        dw = factor("1").reshape(shape) * factor("2").reshape(shape)
    else:
        w1 = t["w1"] if "w1" in t else t["w1_a"] @ t["w1_b"]
        if "w2" in t:
            w2 = t["w2"]
        elif "t2" in t:
            w2 = torch.einsum("ijhw,ip,jr->prhw", t["t2"], t["w2_a"], t["w2_b"])
        else:
            w2 = t["w2_a"] @ t["w2_b"]
        if info.kind == "conv":
            k = info.kernel
            w2 = w2.reshape(w2.shape[0], -1, k, k)
            dw = torch.kron(w1[:, :, None, None], w2)
        else:
            dw = torch.kron(w1, w2)
    return dw.reshape(shape) * (abs(m.scale) if absolute else m.scale)


FULL_LIMIT = 1 << 18  # modules with more weight elements are compared through random probes


def delta_apply(m: AdapterModule, probe, *, absolute: bool = False):
    """scale · ΔW_flat @ probe, ΔW_flat being ΔW reshaped to [out, in·k·k]; cheap for plain LoRA (no full ΔW).

    ``absolute``: |scale|·|B|·(|A|·|probe|), the bound for the rounding error of the product."""
    if m.algo == "lora" and "mid" not in m.tensors:
        down, up = tensor_of(m, m.tensors["down"]), tensor_of(m, m.tensors["up"])
        r = down.shape[0]
        if absolute:
            return (up.abs().reshape(up.shape[0], r) @ (down.abs().reshape(r, -1) @ probe.abs())) * abs(m.scale)
        return (up.reshape(up.shape[0], r) @ (down.reshape(r, -1) @ probe)) * m.scale
    dw = delta_weight(m, absolute=absolute)
    return dw.reshape(dw.shape[0], -1) @ (probe.abs() if absolute else probe)


def factor_count(m: AdapterModule) -> int:
    """How many factors one term of the module's ΔW multiplies (each rounded once by a cast)."""
    t = m.tensors
    if m.algo == "lora":
        return 3 if "mid" in t else 2
    if m.algo == "loha":
        return 6 if "t1" in t else 4
    w1 = 1 if "w1" in t else 2
    w2 = 1 if "w2" in t else (3 if "t2" in t else 2)
    return w1 + w2


def _roundoff(sm: AdapterModule, dm: AdapterModule) -> float:
    """The unit roundoff of what the conversion may have rounded in this module (float32 at least)."""
    u = MIN_ROUNDOFF
    for role, d in dm.tensors.items():
        s = sm.tensors.get(role)
        if s is None or s.dtype != d.dtype or sm.scale != dm.scale:
            u = max(u, UNIT_ROUNDOFF.get(d.dtype, 1.0))
    return u


def _out_in(m: AdapterModule) -> tuple[int, int]:
    t = m.tensors
    if m.algo == "lora":
        return t["up"].shape[0], t["down"].shape[1]
    return 0, 0  # LoHa/LoKr/Tucker are always compared in full


def verify_loaded(src: LoraFile, dst: LoraFile) -> VerifyResult:
    """Compare every module's ΔW (and DoRA magnitude) between two parsed files."""
    import torch

    if isinstance(src, FluxLoraFile):
        from lora_compat.weights.flux_verify import verify_flux  # fused vs split modules: merged per BFL module

        if not isinstance(dst, FluxLoraFile):
            raise UserError(f"{src.path} is a {src.family} LoRA but {dst.path} is a {dst.arch} one")
        return verify_flux(src, dst)

    res = VerifyResult()
    dmods = {(m.part, m.info.diffusers_path): m for m in dst.modules}
    smods = {(m.part, m.info.diffusers_path): m for m in src.modules}
    for key in sorted(set(smods) ^ set(dmods)):
        side = "missing from DST" if key in smods else "only in DST"
        res.failures.append((f"{key[0]}.{key[1]}", side))
    for key, sm in smods.items():
        dm = dmods.get(key)
        if dm is None:
            continue
        res.modules += 1
        label = sm.info.kohya_name
        if sm.algo != dm.algo:
            res.failures.append((label, f"adapter kind differs ({sm.algo} vs {dm.algo})"))
            continue
        info = sm.info
        fout, fin = _out_in(sm)
        cols = fin * info.kernel * info.kernel
        if sm.algo != "lora" or "mid" in sm.tensors or fout * cols <= FULL_LIMIT:
            a, b, ref = delta_weight(sm), delta_weight(dm), delta_weight(sm, absolute=True)
        else:  # Freivalds-style: equal products on random probes; exact max error is not worth 200 MB per module
            gen = torch.Generator().manual_seed(0)
            probe = torch.randn(cols, 16, generator=gen, dtype=torch.float64)
            a, b = delta_apply(sm, probe), delta_apply(dm, probe)
            ref = delta_apply(sm, probe, absolute=True)
        if a.shape != b.shape:
            res.failures.append((label, f"delta weight shape differs ({list(a.shape)} vs {list(b.shape)})"))
            continue
        tol = (factor_count(sm) + 1) * _roundoff(sm, dm)
        res.tolerance = max(res.tolerance, tol)
        err, scale, problem = compare_deltas(a, b, ref)
        rel = err / scale if scale else (0.0 if err == 0 else math.inf)
        res.max_abs = max(res.max_abs, err)
        res.max_rel = max(res.max_rel, rel)
        if problem:
            res.failures.append((label, problem))
        elif rel > tol:
            res.failures.append((label, f"delta weight differs: max abs {err:.3g}, {rel:.3g} of the delta's scale "
                                        f"(allowed {tol:.2g})"))
        if (sm.dora is None) != (dm.dora is None):
            res.failures.append((label, "DoRA magnitude present on one side only"))
        elif sm.dora is not None and dm.dora is not None:
            ma = tensor_of(sm, sm.dora).flatten()
            mb = tensor_of(dm, dm.dora).flatten()
            u = max(MIN_ROUNDOFF, UNIT_ROUNDOFF.get(dm.dora.dtype, 1.0) if dm.dora.dtype != sm.dora.dtype else 0)
            if ma.shape != mb.shape:
                res.failures.append((label, "DoRA magnitudes differ in shape"))
            else:
                derr, dref, dproblem = compare_deltas(ma, mb, ma.abs())
                if dproblem or derr > 2 * u * dref:
                    res.failures.append((label, "DoRA magnitudes differ"))
    return res


def verify_conversion(src: Path | str, dst: Path | str, *, arch: str = "auto", dtype: str = "keep",
                      allow_pickle: bool = False) -> VerifyResult:
    """Open SRC and DST and compare them module by module."""
    require_torch()
    s = open_lora(src, arch=arch, allow_pickle=allow_pickle)
    d = open_lora(dst, arch=s.arch)
    return verify_loaded(s, d)
