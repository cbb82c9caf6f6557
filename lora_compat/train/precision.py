"""sd-scripts' precision patches that the engine applies to accelerate's objects."""

from __future__ import annotations

from typing import Any


def allow_fp16_grad_unscaling(accelerator: Any) -> bool:
    """``full_fp16``: let accelerate's grad scaler unscale fp16 gradients (sd-scripts'
    ``patch_accelerator_for_fp16_training``). ``torch.amp.GradScaler`` refuses fp16 gradients ("Attempting to
    unscale FP16 gradients") because it expects fp32 master weights; with the network itself in fp16 there are
    none, so the scaler is told to accept them. True when a scaler was patched (only fp16 mixed precision on a
    GPU has one; DeepSpeed keeps its own, as in sd-scripts)."""
    scaler = getattr(accelerator, "scaler", None)
    if scaler is None or str(getattr(accelerator, "distributed_type", "")).endswith("DEEPSPEED"):
        return False
    original = scaler._unscale_grads_

    def unscale_grads(optimizer: Any, inv_scale: Any, found_inf: Any, allow_fp16: bool) -> Any:
        return original(optimizer, inv_scale, found_inf, True)

    scaler._unscale_grads_ = unscale_grads
    return True
