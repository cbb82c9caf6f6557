"""What both families' ``--verify`` share (SD in :mod:`~lora_compat.weights.verify`, FLUX.1 / Chroma in
:mod:`~lora_compat.weights.flux_verify`): the result record, the unit roundoffs the tolerance is built from, tensors
read from the file's bytes and the comparison of two ΔW. torch is imported lazily.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from lora_compat.errors import UserError
from lora_compat.weights.layouts import AdapterModule
from lora_compat.weights.safetensors_io import TensorEntry

#: Unit roundoff of each float dtype an adapter tensor may have.
UNIT_ROUNDOFF = {"F64": 2.0 ** -53, "F32": 2.0 ** -24, "F16": 2.0 ** -11, "BF16": 2.0 ** -8,
                 "F8_E4M3": 2.0 ** -4, "F8_E5M2": 2.0 ** -3}


#: Alphas and scales are float32 in every layout: the smallest roundoff a conversion can show.
MIN_ROUNDOFF = UNIT_ROUNDOFF["F32"]


def _finite_or_none(x: float) -> float | None:
    return x if math.isfinite(x) else None


@dataclass
class VerifyResult:
    """Per-conversion ΔW comparison."""

    modules: int = 0
    max_abs: float = 0.0
    max_rel: float = 0.0              # max over modules of max|ΔW_src - ΔW_dst| / max(|scale|·|B|·|A|)
    tolerance: float = 0.0            # the largest per-module bound applied
    failures: list[tuple[str, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "modules": self.modules, "max_abs_error": _finite_or_none(self.max_abs),
                "max_rel_error": _finite_or_none(self.max_rel), "tolerance": self.tolerance,
                "failures": [{"module": m, "reason": r} for m, r in self.failures]}


_TORCH_DTYPES: dict[str, Any] = {}


def require_torch() -> None:
    """UserError unless torch can be imported (``--verify`` needs it)."""
    try:
        import torch  # noqa: F401
    except ImportError:
        raise UserError("--verify needs torch (pip install 'lora-compat[train]')") from None


def tensor_of(m: AdapterModule, entry: TensorEntry):
    import torch

    if not _TORCH_DTYPES:
        _TORCH_DTYPES.update({"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
                              "F64": torch.float64})
        for name, attr in (("F8_E4M3", "float8_e4m3fn"), ("F8_E5M2", "float8_e5m2")):
            if hasattr(torch, attr):
                _TORCH_DTYPES[name] = getattr(torch, attr)
    dtype = _TORCH_DTYPES.get(entry.dtype)
    if dtype is None:
        raise UserError(f"--verify cannot read {entry.dtype} tensors with this torch", file=str(m.source.path),
                        key=entry.name)
    data = bytearray(m.source.read_bytes(entry.name))
    t = torch.frombuffer(data, dtype=dtype) if data else torch.empty(0, dtype=dtype)
    return t.reshape(entry.shape).to(torch.float64)


def compare_deltas(a, b, ref) -> tuple[float, float, str | None]:
    """(max abs error, max of the reference, problem) over finite entries; non-finite ones must match exactly."""
    import torch

    fa, fb = torch.isfinite(a), torch.isfinite(b)
    if not torch.equal(fa, fb) or not torch.equal(a[~fa].nan_to_num(), b[~fb].nan_to_num()):
        return math.inf, 0.0, "non-finite values (NaN/inf) differ"
    err = (a[fa] - b[fb]).abs().max().item() if fa.any() else 0.0
    rf = ref[torch.isfinite(ref)]
    return err, (rf.max().item() if rf.numel() else 0.0), None
