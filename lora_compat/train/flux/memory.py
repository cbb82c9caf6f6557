"""The memory options sd-scripts uses to train FLUX.1 LoRAs on 12-24 GiB GPUs, for diffusers' FLUX models.

* :func:`apply_fp8_base` (``--fp8_base``): base weights stored in ``float8_e4m3fn``, computed in bf16. sd-scripts
  casts the whole model to fp8 (``unet.to(torch.float8_e4m3fn)``) and lets autocast up-cast per op; here every
  ``nn.Linear`` (all but ~0.01 % of FLUX's weights) is *stored* in fp8 through diffusers' layerwise casting and
  up-cast around its forward, and the other base tensors (RMSNorm scales) are rounded through fp8 and kept in
  the compute dtype, so the effective weights are exactly sd-scripts'. Apply it *after* injecting the LoRA (PEFT
  would otherwise create the adapters in the base layer's fp8); the LoRA stays in its own dtype. Needs autocast
  (sd-scripts requires mixed precision for fp8_base). Works for CLIP-L and T5-XXL too (T5's gated MLP forward is
  replaced, as sd-scripts does, so its hidden states are not cast to fp8).
* :class:`BlockSwap` (``--blocks_to_swap N``): N blocks' weights live on the CPU and are swapped with resident
  blocks around each block's forward and, in reverse, its backward, with sd-scripts' schedule (FLUX: N // 2
  double blocks, the rest x 2 single blocks); the trainable LoRA tensors never move.
* :func:`enable_gradient_checkpointing` (``--gradient_checkpointing``, ``--cpu_offload_checkpointing``): per-block
  checkpointing; with CPU offload the activations kept between blocks live on the CPU, as sd-scripts does.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

FP8 = torch.float8_e4m3fn
LORA_PATTERN = "lora_"


def apply_fp8_base(module: nn.Module, *, compute_dtype: torch.dtype = torch.bfloat16,
                   storage_dtype: torch.dtype = FP8) -> None:
    """Store ``module``'s base ``nn.Linear`` weights in ``storage_dtype`` and compute in ``compute_dtype``; round the
    remaining base floating tensors through ``storage_dtype`` (as sd-scripts' whole-model fp8 cast does) and keep
    them in ``compute_dtype``. LoRA sub-modules (``lora_`` in their name) are untouched."""
    from diffusers.hooks import apply_layerwise_casting

    linear_params: set[int] = set()
    for name, sub in module.named_modules():
        if LORA_PATTERN not in name and isinstance(sub, nn.Linear):
            linear_params.update(id(p) for p in sub.parameters(recurse=False))
    with torch.no_grad():
        for name, p in module.named_parameters():
            if LORA_PATTERN in name or id(p) in linear_params or not p.is_floating_point():
                continue
            p.data = p.data.to(storage_dtype).to(compute_dtype)
        for name, b in module.named_buffers():
            if LORA_PATTERN not in name and b.is_floating_point():
                b.data = b.data.to(compute_dtype)
    apply_layerwise_casting(module, storage_dtype=storage_dtype, compute_dtype=compute_dtype,
                            skip_modules_pattern=(LORA_PATTERN,), skip_modules_classes=None)
    for sub in module.modules():
        if type(sub).__name__ == "T5DenseGatedActDense":
            sub.forward = _t5_gated_forward(sub)


def _t5_gated_forward(module: nn.Module) -> Any:
    """transformers' ``T5DenseGatedActDense.forward`` casts its hidden states to ``wo``'s weight dtype (fp8 here)
    before ``wo``; sd-scripts replaces that forward for fp8 T5 (``prepare_text_encoder_fp8``), and so do we."""
    def forward(hidden_states: torch.Tensor) -> torch.Tensor:
        hidden_gelu = module.act(module.wi_0(hidden_states))
        hidden_linear = module.wi_1(hidden_states)
        hidden_states = module.dropout(hidden_gelu * hidden_linear)
        return module.wo(hidden_states)
    return forward


def _in_backward() -> bool:
    """True while autograd runs a backward pass (torch.utils.checkpoint uses the same test)."""
    return torch._C._current_graph_task_id() != -1


def _frozen_params(block: nn.Module) -> list[nn.Parameter]:
    return [p for p in block.parameters() if not p.requires_grad]


class _Swapper:
    """sd-scripts' ``ModelOffloader`` schedule for one list of identical blocks (synchronous copies).

    sd-scripts swaps in a module backward hook of block i (after its backward); here a hook on the gradient of
    block i's outputs does the same swap a moment earlier (after block i + 1's backward), which needs no module
    backward hooks (they miss diffusers' keyword-argument block calls) and brings weights in no later."""

    def __init__(self, name: str, blocks: nn.ModuleList, blocks_to_swap: int, device: torch.device,
                 offload_device: torch.device, log: list[tuple[str, int, int]] | None) -> None:
        self.name = name
        self.blocks = blocks
        self.n = len(blocks)
        self.swap = blocks_to_swap
        self.device = device
        self.offload = offload_device
        self.log = log
        self.resident = set(range(self.n))   # blocks whose frozen weights are on the device
        self.handles: list[Any] = []
        if not self.swap:
            return
        for i, block in enumerate(blocks):
            self.handles.append(block.register_forward_pre_hook(lambda *_a, _i=i: self._check(_i, "forward")))
            self.handles.append(block.register_forward_hook(self._forward_hook(i)))

    def _check(self, i: int, phase: str) -> None:
        if i not in self.resident:
            raise RuntimeError(f"block swap: block {i} runs its {phase} while its weights are offloaded")

    def _move_pair(self, to_offload: int, to_device: int) -> None:
        a, b = _frozen_params(self.blocks[to_offload]), _frozen_params(self.blocks[to_device])
        for p_out, p_in in zip(a, b, strict=True):
            if p_out.shape == p_in.shape and p_out.dtype == p_in.dtype and p_out.device == self.device \
                    and self.device != self.offload:
                buffer = p_out.data
                p_out.data = buffer.to(self.offload)
                buffer.copy_(p_in.data)
                p_in.data = buffer   # the outgoing block's device memory is reused
            else:
                p_out.data = p_out.data.to(self.offload)
                p_in.data = p_in.data.to(self.device)
        self.resident.discard(to_offload)
        self.resident.add(to_device)
        if self.log is not None:
            self.log.append((self.name, to_offload, to_device))

    def prepare(self) -> None:
        """Resting state before a forward: the first n - N blocks' weights on the device, the rest offloaded."""
        if not self.swap:
            return
        for i, block in enumerate(self.blocks):
            target = self.device if i < self.n - self.swap else self.offload
            for p in _frozen_params(block):
                if p.device != target:
                    p.data = p.data.to(target)
        self.resident = set(range(self.n - self.swap))

    def _forward_hook(self, i: int) -> Any:
        def hook(_module: nn.Module, _inputs: Any, output: Any) -> None:
            if _in_backward():
                return  # gradient checkpointing re-running the block: the backward schedule owns the weights
            if torch.is_grad_enabled():
                self._arm_backward(i, output)
                # with a backward ahead, only the first N blocks make room (their weights return in the backward)
                if i >= self.swap:
                    return
            self._move_pair(i, (self.n - self.swap + i) % self.n)
        return hook

    def _arm_backward(self, i: int, output: Any) -> None:
        """Hook the gradient of block i's outputs: it arrives when block i + 1's backward is done, just before
        block i's own. Then sd-scripts' backward swap of block i runs (block i + 1 away, block N - (n - i - 1)
        in: needed a few blocks later) and block i must be resident."""
        outputs = [t for t in (output if isinstance(output, (tuple, list)) else (output,))
                   if isinstance(t, torch.Tensor) and t.requires_grad]
        if not outputs:
            return
        propagated = self.n - i - 1
        state = {"done": False}

        def on_grad(_grad: torch.Tensor) -> None:
            if state["done"]:
                return
            state["done"] = True
            if 0 < propagated <= self.swap:
                self._move_pair(self.n - propagated, self.swap - propagated)
            self._check(i, "backward")

        for t in outputs:
            t.register_hook(on_grad)

    def remove(self) -> None:
        for h in self.handles:
            h.remove()
        self.handles.clear()


class BlockSwap:
    """``--blocks_to_swap N`` on a diffusers ``FluxTransformer2DModel``: sd-scripts splits N into N // 2 double
    and (N - N // 2) * 2 single blocks and keeps at least two of each kind resident.

    Call :meth:`prepare_before_forward` before each forward (sd-scripts' ``prepare_block_swap_before_forward``).
    ``offload_device`` is the CPU; ``log`` (a list) records every swap as ``(kind, block offloaded, block
    brought in)``, for tests and debugging.
    """

    def __init__(self, transformer: nn.Module, blocks_to_swap: int, device: torch.device | str, *,
                 offload_device: torch.device | str = "cpu", log: list[tuple[str, int, int]] | None = None):
        double = blocks_to_swap // 2
        single = (blocks_to_swap - double) * 2
        n_double, n_single = len(transformer.transformer_blocks), len(transformer.single_transformer_blocks)
        if double > n_double - 2 or single > n_single - 2:
            raise ValueError(f"blocks_to_swap {blocks_to_swap} would swap {double} double and {single} single blocks; "
                             f"at most {n_double - 2} double and {n_single - 2} single blocks can be swapped")
        self.blocks_to_swap = blocks_to_swap
        self.device, self.offload = torch.device(device), torch.device(offload_device)
        self.double = _Swapper("double", transformer.transformer_blocks, double, self.device, self.offload, log)
        self.single = _Swapper("single", transformer.single_transformer_blocks, single, self.device, self.offload,
                               log)
        self.transformer = transformer

    def move_to_device_except_swap_blocks(self) -> None:
        """Everything on the device, then the swapped blocks' frozen weights back to the offload device."""
        self.transformer.to(self.device)
        self.prepare_before_forward()

    def prepare_before_forward(self) -> None:
        """Put every block's weights where the schedule expects them at the start of a forward."""
        self.double.prepare()
        self.single.prepare()

    def remove(self) -> None:
        """Remove the hooks (the weights stay where they are)."""
        self.double.remove()
        self.single.remove()


def _to(x: Any, device: torch.device) -> Any:
    if isinstance(x, torch.Tensor):
        return x.to(device)
    if isinstance(x, (list, tuple)):
        return type(x)(_to(v, device) for v in x)
    if isinstance(x, dict):
        return {k: _to(v, device) for k, v in x.items()}
    return x


def enable_gradient_checkpointing(transformer: nn.Module, *, cpu_offload: bool = False,
                                  device: torch.device | str | None = None) -> None:
    """Per-block gradient checkpointing (non-reentrant, like sd-scripts). ``cpu_offload``: each block's inputs and
    outputs (the activations checkpointing keeps) live on the CPU and are moved to ``device`` inside the block, as
    sd-scripts' ``cpu_offload_checkpointing``; the last block returns to the device for the final layer."""
    if not cpu_offload:
        transformer.enable_gradient_checkpointing()
        return
    dev = torch.device(device) if device is not None else next(transformer.parameters()).device
    cpu = torch.device("cpu")
    last = transformer.single_transformer_blocks[-1] if len(transformer.single_transformer_blocks) else \
        transformer.transformer_blocks[-1]

    def checkpoint(block: nn.Module, *args: Any) -> Any:
        to_device_after = block is last

        def run(*inputs: Any) -> Any:
            out = block(*_to(inputs, dev))
            return out if to_device_after else _to(out, cpu)

        # the hidden states (image and text streams) are what checkpointing keeps between blocks; the shared
        # conditioning (temb, rotary embeddings, mask) stays where it is
        streams, rest = _to(args[:2], cpu), args[2:]
        return torch.utils.checkpoint.checkpoint(run, *streams, *rest, use_reentrant=False)

    transformer.enable_gradient_checkpointing(gradient_checkpointing_func=checkpoint)
