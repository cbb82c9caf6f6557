"""``convert --verify``: prove SRC and DST change every base module by the same ΔW (needs torch, imported lazily).

ΔW per module = scale · (B·A) for LoRA/LoCon (Tucker ``lora_mid`` composed in), the Hadamard product for LoHa, the
Kronecker product for LoKr; DoRA magnitudes are compared value by value (the merged DoRA weight needs the base
model, which a LoRA file does not carry; equal ΔW and equal magnitudes give an equal merge).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lora_compat.errors import UserError
from lora_compat.weights.layouts import AdapterModule, LoraFile, open_lora
from lora_compat.weights.safetensors_io import TensorEntry

# Relative tolerance (max |ΔW_src - ΔW_dst| / max |ΔW_src|) by the least precise float dtype written.
TOLERANCE = {"F32": 1e-6, "F64": 1e-6, "F16": 2e-3, "BF16": 2e-2}


@dataclass
class VerifyResult:
    """Per-conversion ΔW comparison."""

    modules: int = 0
    max_abs: float = 0.0
    max_rel: float = 0.0
    tolerance: float = 1e-6
    failures: list[tuple[str, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "modules": self.modules, "max_abs_error": self.max_abs, "max_rel_error": self.max_rel,
                "tolerance": self.tolerance, "failures": [{"module": m, "reason": r} for m, r in self.failures]}


_TORCH_DTYPES = {}


def _tensor(m: AdapterModule, entry: TensorEntry):
    import torch

    if not _TORCH_DTYPES:
        _TORCH_DTYPES.update({"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
                              "F64": torch.float64, "I64": torch.int64, "I32": torch.int32})
    data = bytearray(m.source.read_bytes(entry.name))
    t = torch.frombuffer(data, dtype=_TORCH_DTYPES[entry.dtype]) if data else torch.empty(0)
    return t.reshape(entry.shape).to(torch.float64)


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


def delta_weight(m: AdapterModule):
    """scale · ΔW of one module as a float64 tensor shaped like the base weight."""
    import torch

    info = m.info
    t = {role: _tensor(m, e) for role, e in m.tensors.items()}
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
    return dw.reshape(shape) * m.scale


FULL_LIMIT = 1 << 18  # modules with more weight elements are compared through random probes


def delta_apply(m: AdapterModule, probe):
    """scale · ΔW_flat @ probe, ΔW_flat being ΔW reshaped to [out, in·k·k]; cheap for plain LoRA (no full ΔW)."""
    if m.algo == "lora" and "mid" not in m.tensors:
        down, up = _tensor(m, m.tensors["down"]), _tensor(m, m.tensors["up"])
        r = down.shape[0]
        return (up.reshape(up.shape[0], r) @ (down.reshape(r, -1) @ probe)) * m.scale
    dw = delta_weight(m)
    return dw.reshape(dw.shape[0], -1) @ probe


def _out_in(m: AdapterModule) -> tuple[int, int]:
    t = m.tensors
    if m.algo == "lora":
        return t["up"].shape[0], t["down"].shape[1]
    return 0, 0  # LoHa/LoKr/Tucker are always compared in full


def _least_precise(lf: LoraFile) -> str:
    order = ["BF16", "F16", "F32", "F64"]
    seen = {e.dtype for f in lf.files for e in f.tensors.values()}
    for d in order:
        if d in seen:
            return d
    return "F32"


def verify_loaded(src: LoraFile, dst: LoraFile) -> VerifyResult:
    """Compare every module's ΔW (and DoRA magnitude) between two parsed files."""
    import torch

    res = VerifyResult()
    dmods = {(m.part, m.info.diffusers_path): m for m in dst.modules}
    smods = {(m.part, m.info.diffusers_path): m for m in src.modules}
    for key in sorted(set(smods) ^ set(dmods)):
        side = "missing from DST" if key in smods else "only in DST"
        res.failures.append((f"{key[0]}.{key[1]}", side))
    res.tolerance = max(TOLERANCE[_least_precise(src)], TOLERANCE[_least_precise(dst)])
    for key, sm in smods.items():
        dm = dmods.get(key)
        if dm is None:
            continue
        res.modules += 1
        info = sm.info
        fout, fin = _out_in(sm)
        cols = fin * info.kernel * info.kernel
        if sm.algo != "lora" or "mid" in sm.tensors or fout * cols <= FULL_LIMIT:
            a, b = delta_weight(sm), delta_weight(dm)
        else:  # Freivalds-style: equal products on random probes; exact max error is not worth 200 MB per module
            gen = torch.Generator().manual_seed(0)
            probe = torch.randn(cols, 16, generator=gen, dtype=torch.float64)
            a, b = delta_apply(sm, probe), delta_apply(dm, probe)
        err = (a - b).abs().max().item() if a.numel() else 0.0
        ref = a.abs().max().item() if a.numel() else 0.0
        rel = err / ref if ref else (0.0 if err == 0 else float("inf"))
        res.max_abs = max(res.max_abs, err)
        res.max_rel = max(res.max_rel, rel)
        label = sm.info.kohya_name
        if rel > res.tolerance:
            res.failures.append((label, f"delta weight differs: max abs {err:.3g}, rel {rel:.3g}"))
        if (sm.dora is None) != (dm.dora is None):
            res.failures.append((label, "DoRA magnitude present on one side only"))
        elif sm.dora is not None:
            ma = _tensor(sm, sm.dora).flatten()
            mb = _tensor(dm, dm.dora).flatten()
            if ma.shape != mb.shape or (ma - mb).abs().max().item() > res.tolerance * ma.abs().max().item():
                res.failures.append((label, "DoRA magnitudes differ"))
    return res


def verify_conversion(src: Path | str, dst: Path | str, *, arch: str = "auto", dtype: str = "keep",
                      allow_pickle: bool = False) -> VerifyResult:
    """Open SRC and DST and compare them module by module."""
    try:
        import torch  # noqa: F401
    except ImportError:
        raise UserError("--verify needs torch (pip install 'lora-compat[train]')") from None
    s = open_lora(src, arch=arch, allow_pickle=allow_pickle)
    d = open_lora(dst, arch=s.arch)
    return verify_loaded(s, d)
