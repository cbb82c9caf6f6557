"""What a LoRA file holds: layout, architecture, algorithm, modules per part, ranks, alphas, dtypes, metadata.

Reads only the safetensors header and the alpha scalars (no torch).
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from lora_compat.config.secrets import redact
from lora_compat.weights.flux_layouts import FluxLoraFile
from lora_compat.weights.layouts import LoraFile
from lora_compat.weights.reader import open_lora

PART_LABEL = {"unet": "UNet", "te1": "TE1", "te2": "TE2", "transformer": "transformer", "te3": "TE3"}


def _num(x: float | int | None) -> Any:
    if x is None:
        return None
    return int(x) if float(x).is_integer() else float(x)


def _dist(counter: Counter) -> dict[str, int]:
    return {str(_num(k)) if k is not None else "none": v for k, v in sorted(counter.items(),
                                                                           key=lambda kv: (kv[0] is None, kv[0] or 0))}


def inspect_data(lf: LoraFile) -> dict[str, Any]:
    """The ``inspect --format json`` object (stable contract; see docs/cli.md)."""
    parts: dict[str, dict[str, Any]] = {}
    for m in lf.modules:
        p = parts.setdefault(m.part, {"modules": 0, "groups": Counter(), "algos": Counter()})
        p["modules"] += 1
        p["groups"][m.info.group] += 1
        p["algos"][m.algo] += 1
    ranks = Counter(m.rank for m in lf.modules)
    alphas = Counter(m.alpha for m in lf.modules)
    scales = Counter(round(m.scale, 6) for m in lf.modules)
    dtypes: Counter = Counter()
    tensor_count = 0
    size = 0
    for f in lf.files:
        size += f.file_size
        for e in f.tensors.values():
            dtypes[e.dtype] += 1
            tensor_count += 1
    meta = {k: redact(k, v) for k, v in sorted(lf.metadata.items())}
    return {
        "path": str(lf.path),
        "layout": lf.layout,
        "arch": lf.arch,
        "algo": lf.algo,
        "unet_naming": lf.naming or None,
        "custom_widths": lf.custom_widths,
        "modules": {PART_LABEL[p].lower(): {"count": v["modules"], "groups": dict(v["groups"]),
                                             "algos": dict(v["algos"])} for p, v in parts.items()},
        "module_count": len(lf.modules),
        "ranks": _dist(ranks),
        "alphas": _dist(alphas),
        "scales": _dist(scales),
        "missing_alpha": sum(1 for m in lf.modules if m.alpha is None),
        "dora": {"modules": sum(1 for m in lf.modules if m.dora is not None),
                 "axes": dict(Counter(m.dora_axis for m in lf.modules if m.dora is not None))},
        "dtypes": dict(dtypes),
        "tensors": tensor_count,
        "size_bytes": size,
        "files": [str(f.path) for f in lf.files],
        "metadata": meta,
        "peft_configs": {PART_LABEL[p].lower(): c.summary() for p, c in lf.peft_configs.items()},
        **_family_section(lf),
    }


def _family_section(lf: LoraFile) -> dict[str, Any]:
    """Extra keys for families beyond SD (``flux`` for FLUX.1 / Chroma, ``sd3`` for SD3/SD3.5)."""
    if isinstance(lf, FluxLoraFile) and lf.arch == "sd3":
        from lora_compat.weights.sd3_check import sd3_inspect

        return {"sd3": sd3_inspect(lf)}
    if isinstance(lf, FluxLoraFile):
        from lora_compat.weights.flux_check import flux_inspect

        return {"flux": flux_inspect(lf)}
    return {}


def inspect_path(path: Path | str, *, arch: str = "auto", allow_pickle: bool = False) -> dict[str, Any]:
    """Open and describe ``path``."""
    return inspect_data(open_lora(path, arch=arch, allow_pickle=allow_pickle))


def metadata_preview(value: str, width: int = 80) -> str:
    """A one-line preview of a metadata value (JSON values compacted)."""
    text = value
    try:
        obj = json.loads(value)
        if isinstance(obj, (dict, list)):
            text = json.dumps(obj, separators=(",", ":"), ensure_ascii=False)
    except (json.JSONDecodeError, ValueError):
        pass
    text = text.replace("\n", " ")
    return text if len(text) <= width else text[: width - 1] + "…"
