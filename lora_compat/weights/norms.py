"""How much each module and block of a LoRA changes the model: ``‖ΔW‖_F`` per module, then rank, alpha and norm per
block (``inspect --plot``).

The norm is computed from the safetensors bytes with **numpy** (never torch; numpy is needed by ``--plot`` only and
ships with matplotlib): ``ΔW = scale · up · down`` for LoRA/LoCon (``‖U·D‖²_F = Σ (UᵀU) ⊙ (DDᵀ)``, exact without
building ``ΔW``), the Tucker ``mid`` core rebuilt densely, LoHa's Hadamard product ``(w1a·w1b) ⊙ (w2a·w2b)`` built
densely (one module at a time), LoKr's Kronecker product by ``‖A ⊗ B‖_F = ‖A‖_F·‖B‖_F``. ``scale`` is the kohya
``alpha / rank`` (1 without alpha). DoRA magnitudes are not applied: the norm is the one of the low-rank delta.

Blocks: UNet modules are grouped as the block-weight convention names them (``IN00``..``IN11``, ``MID``,
``OUT00``..``OUT11`` from the LDM/SGM path; time/label embeddings ``EMB``, the output conv ``OUT``); text-encoder
modules by layer (``L00``..; T5 blocks too); FLUX transformer modules by double/single block (``D00``, ``S00``), SD3
joint blocks as ``D00``..; anything else by the first component of its path.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from lora_compat.weights.layouts import AdapterModule, LoraFile

_SGM_BLOCK = re.compile(r"^(input_blocks|output_blocks)\.(\d+)")
_DIFFUSERS_BLOCK = re.compile(r"^(down_blocks|up_blocks)\.(\d+)")
_LAYER = re.compile(r"(?:^|\.)(?:layers|encoder\.block)\.(\d+)\.")   # CLIP layers, T5 blocks
_FLUX_BLOCK = re.compile(r"^(double_blocks|single_blocks|transformer_blocks|single_transformer_blocks|joint_blocks)"
                         r"\.(\d+)")
# MM-DiT double-stream blocks: FLUX double blocks, SD3 joint blocks (SAI) = transformer_blocks (diffusers)
_FLUX_PREFIX = {"double_blocks": "D", "transformer_blocks": "D", "joint_blocks": "D", "single_blocks": "S",
                "single_transformer_blocks": "S"}


@dataclass(frozen=True)
class ModuleNorm:
    """One adapted module: its part (unet, te1, te2, transformer, te3), block label, rank, alpha, scale and
    ``‖scale · ΔW‖_F``."""

    name: str
    part: str
    block: str
    rank: int | None
    alpha: float | None
    scale: float
    norm: float


@dataclass(frozen=True)
class BlockSummary:
    """All modules of one block of one part: how many, rank and alpha ranges, and the block's total delta norm
    ``sqrt(Σ ‖ΔW_i‖²_F)`` (the Frobenius norm of all its deltas together)."""

    part: str
    block: str
    modules: int
    rank_min: int | None
    rank_max: int | None
    alpha_min: float | None
    alpha_max: float | None
    norm: float

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


def block_label(info: Any) -> str:
    """The block a module belongs to (see the module docstring)."""
    sgm = getattr(info, "sgm_path", None)
    path = str(getattr(info, "diffusers_path", "") or "")
    if sgm:
        m = _SGM_BLOCK.match(sgm)
        if m:
            return f"{'IN' if m.group(1) == 'input_blocks' else 'OUT'}{int(m.group(2)):02d}"
        if sgm.startswith("middle_block"):
            return "MID"
        if sgm.startswith(("time_embed", "label_emb")):
            return "EMB"
        if sgm.startswith("out."):
            return "OUT"
    m = _LAYER.search("." + path)
    if m:
        return f"L{int(m.group(1)):02d}"
    m = _FLUX_BLOCK.match(path)
    if m:
        return f"{_FLUX_PREFIX[m.group(1)]}{int(m.group(2)):02d}"
    m = _DIFFUSERS_BLOCK.match(path)
    if m:
        return f"{'down' if m.group(1) == 'down_blocks' else 'up'}.{m.group(2)}"
    if path.startswith("mid_block"):
        return "mid"
    return path.split(".", 1)[0] or "?"


def _array(np: Any, module: AdapterModule, role: str) -> Any:
    """A tensor of the module as a float64 numpy array in its stored shape."""
    entry = module.tensors[role]
    data = module.source.read_bytes(entry.name)
    dtype = entry.dtype
    if dtype == "BF16":
        arr = (np.frombuffer(data, dtype="<u2").astype(np.uint32) << 16).view(np.float32)
    elif dtype.startswith("F8_"):
        from lora_compat.weights.safetensors_io import _f8_values

        arr = np.asarray(_f8_values(dtype), dtype=np.float64)[np.frombuffer(data, dtype=np.uint8)]
    else:
        code = {"F64": "<f8", "F32": "<f4", "F16": "<f2"}.get(dtype)
        if code is None:
            raise ValueError(f"{entry.name}: cannot read {dtype} values as weights")
        arr = np.frombuffer(data, dtype=code)
    return arr.astype(np.float64).reshape(entry.shape)


def _flat2(np: Any, a: Any) -> Any:
    return a.reshape(a.shape[0], -1)


def _tucker(np: Any, core: Any, wa: Any, wb: Any) -> Any:
    """LyCORIS ``rebuild_tucker``: ``einsum('i j ..., i p, j r -> p r ...')``."""
    return np.einsum("ij...,ip,jr->pr...", core, wa, wb)


def delta_norm(module: AdapterModule) -> float:
    """``‖scale · ΔW‖_F`` of one module (see the module docstring)."""
    import numpy as np

    t, get = module.tensors, (lambda role: _array(np, module, role))
    if module.algo == "lora":
        up, down = _flat2(np, get("up")), get("down")
        if "mid" in t:  # Tucker conv: up [o, r], mid [r, r, k, k], down [r, i, 1, 1]
            w = np.einsum("or,rs...,si->oi...", up, get("mid"), _flat2(np, down))
            sq = float(np.sum(w * w))
        else:
            d = _flat2(np, down)
            sq = float(np.sum((up.T @ up) * (d @ d.T)))
    elif module.algo == "loha":
        halves = []
        for k in ("1", "2"):
            if f"t{k}" in t:
                halves.append(_tucker(np, get(f"t{k}"), get(f"w{k}_a"), get(f"w{k}_b")))
            else:
                halves.append(get(f"w{k}_a") @ _flat2(np, get(f"w{k}_b")))
        w = halves[0] * halves[1].reshape(halves[0].shape)
        sq = float(np.sum(w * w))
    else:  # lokr: ‖A ⊗ B‖ = ‖A‖·‖B‖
        factors = []
        for k in ("1", "2"):
            if f"w{k}" in t:
                f = get(f"w{k}")
            elif f"t{k}" in t:
                f = _tucker(np, get(f"t{k}"), get(f"w{k}_a"), get(f"w{k}_b"))
            else:
                f = get(f"w{k}_a") @ _flat2(np, get(f"w{k}_b"))
            factors.append(float(np.sum(f * f)))
        sq = factors[0] * factors[1]
    return abs(module.scale) * math.sqrt(max(sq, 0.0))


def module_norms(lf: LoraFile) -> list[ModuleNorm]:
    """Every module of ``lf`` with its block and delta norm, in the file's module order."""
    return [ModuleNorm(m.name, m.part, block_label(m.info), m.rank, m.alpha, m.scale, delta_norm(m))
            for m in lf.modules]


def block_summaries(norms: list[ModuleNorm]) -> list[BlockSummary]:
    """Group module norms by (part, block), in order of first appearance."""
    groups: dict[tuple[str, str], list[ModuleNorm]] = {}
    for n in norms:
        groups.setdefault((n.part, n.block), []).append(n)
    out = []
    for (part, block), items in groups.items():
        ranks = [n.rank for n in items if n.rank is not None]
        alphas = [n.alpha for n in items if n.alpha is not None]
        out.append(BlockSummary(part, block, len(items), min(ranks, default=None), max(ranks, default=None),
                                min(alphas, default=None), max(alphas, default=None),
                                math.sqrt(sum(n.norm ** 2 for n in items))))
    return out
