"""FLUX.1 memory options on the tiny DiT with a LoRA: fp8 base weights give exactly sd-scripts' fp8-rounded
model; block swapping follows sd-scripts' schedule with every block resident when it runs (forward, backward,
checkpoint recompute) and leaves outputs and gradients unchanged; (CPU-offloaded) gradient checkpointing
leaves gradients unchanged; latent and text-encoder caches use sd-scripts' files."""

from __future__ import annotations

import copy

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")

from lora_compat.train.flux.cache import (  # noqa: E402
    TextEncoderOutputCache,
    is_latents_cache_valid,
    is_te_cache_valid,
    latents_npz_path,
    load_latents,
    load_te_outputs,
    save_latents,
    save_te_outputs,
    te_outputs_npz_path,
)
from lora_compat.train.flux.lora import create_flux_network  # noqa: E402
from lora_compat.train.flux.memory import FP8, BlockSwap, apply_fp8_base, enable_gradient_checkpointing  # noqa: E402
from lora_compat.train.flux.network_spec import parse_network_args, select_modules  # noqa: E402
from lora_compat.train.flux.packing import pack_latents, prepare_img_ids  # noqa: E402
from lora_compat.train.flux.tiny import tiny_transformer_config  # noqa: E402
from lora_compat.train.latents import CachedLatents  # noqa: E402


def _dit_with_lora(num_double: int = 2, num_single: int = 2):
    from diffusers import FluxTransformer2DModel

    torch.manual_seed(0)
    t = FluxTransformer2DModel(**tiny_transformer_config("dev", num_double, num_single))
    args = parse_network_args(4, 4, {})
    net = create_flux_network(args, select_modules(args, num_double=num_double, num_single=num_single,
                                                   network_train_unet_only=True), {"transformer": t})
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for m in net.modules:
            for u in m.ups:
                u.weight.copy_(torch.randn(u.weight.shape, generator=g) * 0.05)
    return t, net


def _inputs(seed: int = 2):
    g = torch.Generator().manual_seed(seed)
    return {"hidden_states": pack_latents(torch.randn(2, 16, 8, 8, generator=g)),
            "encoder_hidden_states": torch.randn(2, 6, 32, generator=g),
            "pooled_projections": torch.randn(2, 32, generator=g), "timestep": torch.tensor([0.2, 0.7]),
            "img_ids": prepare_img_ids(1, 4, 4)[0], "txt_ids": torch.zeros(6, 3), "guidance": torch.tensor([3.5, 3.5])}


def _loss_and_grads(t, net, inputs):
    for p in net.parameters():
        p.grad = None
    out = t(**inputs).sample
    loss = (out ** 2).mean()
    loss.backward()
    return out.detach(), [p.grad.clone() for p in net.parameters()]


def test_fp8_base_equals_sd_scripts_fp8_rounded_model() -> None:
    a, _ = _dit_with_lora()
    reference = copy.deepcopy(a)
    with torch.no_grad():  # sd-scripts: every base tensor cast to fp8, computed in bf16 under autocast
        for name, p in reference.named_parameters():
            if "lora_" not in name:
                p.data = p.data.to(FP8).to(torch.bfloat16)
    full = copy.deepcopy(a)
    apply_fp8_base(a, compute_dtype=torch.bfloat16)
    q = a.get_submodule("transformer_blocks.0.attn.to_q")
    assert q.base_layer.weight.dtype == FP8 and q.lora_A["default"].weight.dtype == torch.float32
    assert a.get_submodule("transformer_blocks.0.attn.norm_q").weight.dtype == torch.bfloat16
    base_bytes = sum(p.numel() * p.element_size() for n, p in a.named_parameters() if "lora_" not in n)
    full_bytes = sum(p.numel() * p.element_size() for n, p in full.named_parameters() if "lora_" not in n)
    assert base_bytes < 0.3 * full_bytes
    inputs = _inputs()
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        out_a = a(**inputs).sample
        out_ref = reference(**inputs).sample
    assert q.base_layer.weight.dtype == FP8  # stored in fp8 again after the forward
    assert torch.equal(out_a, out_ref)
    with torch.no_grad():
        out_full = full(**inputs).sample
    assert (out_a.float() - out_full).abs().max() < 0.1 * out_full.abs().max()
    # training: the LoRA gradients through the fp8-stored base equal those through sd-scripts' rounded model
    grads = []
    for model in (a, reference):
        model.train()
        lora = [p for n, p in model.named_parameters() if "lora_" in n]
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = model(**inputs).sample
        out.float().square().mean().backward()
        grads.append([p.grad for p in lora])
    assert all(g is not None and h is not None and torch.equal(g, h) for g, h in zip(*grads, strict=True))
    assert q.base_layer.weight.dtype == FP8


def test_fp8_text_encoders_equal_sd_scripts_fp8_rounded_models() -> None:
    from lora_compat.train.flux.tiny import tiny_flux_components

    comps = tiny_flux_components("dev", num_layers=1, num_single_layers=1)
    t5_ids = comps.t5_tokenizer(["a photo of a cat"], return_tensors="pt").input_ids
    clip_ids = comps.clip_tokenizer(["a photo of a cat"], padding="max_length", max_length=77,
                                    return_tensors="pt").input_ids
    for model, ids in ((comps.t5xxl, t5_ids), (comps.clip_l, clip_ids)):
        reference = copy.deepcopy(model)
        with torch.no_grad():
            for p in reference.parameters():
                p.data = p.data.to(FP8).to(torch.bfloat16)
        apply_fp8_base(model)
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
            assert torch.equal(model(ids)[0], reference(ids)[0]), type(model).__name__


@pytest.mark.parametrize("checkpointing", [False, True])
def test_block_swap_schedule_and_unchanged_training(checkpointing) -> None:
    t, net = _dit_with_lora(3, 4)
    plain, plain_grads = _loss_and_grads(t, net, _inputs())
    log: list = []
    if checkpointing:
        enable_gradient_checkpointing(t)
    swap = BlockSwap(t, 2, "cpu", log=log)                       # sd-scripts: 1 double + 2 single blocks
    assert (swap.double.swap, swap.single.swap) == (1, 2)
    t.train()
    for _ in range(2):                                             # two steps: the resting state comes back
        swap.prepare_before_forward()
        log.clear()
        out, grads = _loss_and_grads(t, net, _inputs())
        assert torch.allclose(out, plain, atol=1e-6)
        assert all(torch.allclose(g, h, atol=1e-6) for g, h in zip(grads, plain_grads, strict=True))
        # sd-scripts' schedule: the forward makes room, the backward (in reverse) brings the blocks back
        assert [e[1:] for e in log if e[0] == "double"] == [(0, 2), (2, 0)]
        assert [e[1:] for e in log if e[0] == "single"] == [(0, 2), (1, 3), (3, 1), (2, 0)]
        assert swap.double.resident == {0, 1} and swap.single.resident == {0, 1}
    with torch.no_grad():                                          # forward only: every block swaps once
        swap.prepare_before_forward()
        log.clear()
        t(**_inputs())
        assert len(log) == 3 + 4
        assert swap.double.resident == {0, 1} and swap.single.resident == {0, 1}
    swap.single.resident.discard(0)                                 # a block whose weights are away cannot run
    with pytest.raises(RuntimeError, match="block 0 runs its forward while its weights are offloaded"), \
            torch.no_grad():
        t(**_inputs())
    with pytest.raises(ValueError, match="at most 1 double"):
        BlockSwap(t, 4, "cpu")


def test_gradient_checkpointing_with_cpu_offload_keeps_gradients() -> None:
    t, net = _dit_with_lora()
    t.train()
    plain, plain_grads = _loss_and_grads(t, net, _inputs())
    seen = []
    for block in list(t.transformer_blocks) + list(t.single_transformer_blocks):
        block.register_forward_pre_hook(lambda m, args, kwargs: seen.append(args[0].device.type)
                                        if args else None, with_kwargs=True)
    enable_gradient_checkpointing(t, cpu_offload=True, device="cpu")
    out, grads = _loss_and_grads(t, net, _inputs())
    assert t.gradient_checkpointing and len(seen) == 2 * 4        # each block ran, then ran again in backward
    assert torch.allclose(out, plain, atol=1e-6)
    assert all(torch.allclose(g, h, atol=1e-6) for g, h in zip(grads, plain_grads, strict=True))


def test_latent_cache_files(tmp_path) -> None:
    image = str(tmp_path / "img.png")
    path = latents_npz_path(image, (768, 512))
    assert path.endswith("img_0768x0512_flux.npz")
    a = CachedLatents(torch.randn(16, 64, 96), (768, 512), (0, 0, 768, 512), torch.randn(16, 64, 96))
    b = CachedLatents(torch.randn(16, 32, 48), (768, 512), (1, 2, 3, 4))
    save_latents(path, a)
    save_latents(path, b)                                    # both resolutions in one file, as sd-scripts
    import numpy as np

    with np.load(path) as npz:
        assert sorted(npz.files) == sorted(["latents_64x96", "original_size_64x96", "crop_ltrb_64x96",
                                            "latents_flipped_64x96", "latents_32x48", "original_size_32x48",
                                            "crop_ltrb_32x48"])
    assert is_latents_cache_valid(path, (768, 512), flip_aug=True, alpha_mask=False)
    assert not is_latents_cache_valid(path, (384, 256), flip_aug=True, alpha_mask=False)
    assert not is_latents_cache_valid(path, (768, 512), flip_aug=False, alpha_mask=True)
    got = load_latents(path, (384, 256))
    assert np.array_equal(got.latents, b.latents.numpy()) and got.crop_ltrb == (1, 2, 3, 4)


def test_text_encoder_output_cache(tmp_path) -> None:
    calls = []

    def encode(captions):
        calls.append(list(captions))
        n = len(captions)
        return (torch.ones(n, 768), torch.full((n, 4, 8), 2.0), torch.zeros(n, 4, 3),
                torch.tensor([[1, 1, 0, 0]] * n))

    path = te_outputs_npz_path(str(tmp_path / "a.jpg"))
    assert path.endswith("a_flux_te.npz")
    cache = TextEncoderOutputCache(encode, apply_t5_attn_mask=True)
    first = cache.get("a cat", path)
    again = cache.get("a cat", path)
    assert again is first and calls == [["a cat"]]
    assert is_te_cache_valid(path, apply_t5_attn_mask=True) and not is_te_cache_valid(path, apply_t5_attn_mask=False)
    fresh = TextEncoderOutputCache(encode, apply_t5_attn_mask=True)
    from_disk = fresh.get("a cat", path)                        # read back, not encoded again
    assert calls == [["a cat"]] and torch.equal(from_disk[1], first[1])
    batch = TextEncoderOutputCache.collate([first, from_disk])
    assert batch[1].shape == (2, 4, 8) and batch[3].tolist() == [[1, 1, 0, 0]] * 2
    save_te_outputs(path, first, apply_t5_attn_mask=False)
    assert load_te_outputs(path)[0].shape == (768,)
