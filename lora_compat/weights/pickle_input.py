"""``--allow-pickle``: read a .ckpt/.pt LoRA with ``torch.load(weights_only=True)`` into a temporary safetensors.

``weights_only=True`` restricts unpickling to tensors and plain containers, so a hostile file cannot run code; it
is still opt-in because it imports torch and trusts PyTorch's restricted unpickler.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path

from lora_compat.errors import UserError


def pickle_to_safetensors(path: Path) -> Path:
    """Load ``path`` as a weights-only pickle and write its tensors to a temp .safetensors (removed at exit)."""
    try:
        import torch
    except ImportError:
        raise UserError("--allow-pickle needs torch (pip install 'lora-compat[train]')", file=str(path)) from None
    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"cannot load as a weights-only pickle: {msg[:200]}", file=str(path)) from None
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not obj:
        raise UserError("pickle does not hold a dict of tensors", file=str(path))
    tensors = {}
    for k, v in obj.items():
        if not isinstance(k, str) or not isinstance(v, torch.Tensor):
            raise UserError("pickle holds a non-tensor entry", file=str(path), key=str(k)[:100])
        tensors[k] = v.detach().contiguous()
    from safetensors.torch import save_file

    tmpdir = Path(tempfile.mkdtemp(prefix="lora-compat-pickle-"))
    atexit.register(shutil.rmtree, tmpdir, True)
    out = tmpdir / (path.stem + ".safetensors")
    try:
        save_file(tensors, str(out))
    except Exception as exc:
        raise UserError(f"cannot re-save the pickle's tensors: {exc}", file=str(path)) from None
    return out
