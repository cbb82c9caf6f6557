"""sd-scripts' memory options on the tiny models: each leaves the training as it is (within its dtype's
tolerance) or is said to be ignored, with the reason."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")
pytest.importorskip("peft")

from lora_compat.config.model import CanonicalConfig  # noqa: E402
from lora_compat.demo import make_synthetic_dataset  # noqa: E402
from lora_compat.plan import make_plan  # noqa: E402
from lora_compat.train.engine import RunOptions, Training, training_plan  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_thread")]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return make_synthetic_dataset(tmp_path_factory.mktemp("data"), n_images=2, repeats=1)


def _cfg(out, **opts) -> CanonicalConfig:
    cfg = CanonicalConfig(dialect="native", source="test")
    base = {"pretrained_model_name_or_path": "tiny:sd1", "output_dir": str(out), "resolution": "64", "network_dim": 4,
            "network_alpha": 4.0, "learning_rate": 1e-3, "seed": 5, "optimizer_type": "AdamW", "max_train_steps": 2}
    base.update(opts)
    for k, v in base.items():
        cfg.set(k, v)
    return cfg


def _train(tmp_path, data_dir, name, **opts):
    from accelerate.state import AcceleratorState, GradientState

    training = Training(training_plan(_cfg(tmp_path / name, **opts), train_data=str(data_dir)),
                        RunOptions(show_progress=False))
    try:
        return training, training.run()
    finally:  # as run_plan: the next run may use another mixed precision
        AcceleratorState._reset_state()
        GradientState._reset_state()


def test_checkpointing_and_sdpa_leave_the_training_as_it_is(tmp_path, data_dir):
    _, plain = _train(tmp_path, data_dir, "plain")
    _, memory = _train(tmp_path, data_dir, "memory", gradient_checkpointing=True, mem_eff_attn=True)
    # recomputed activations and the SDPA kernel: float32 rounding apart, the same run
    assert memory.losses == pytest.approx(plain.losses, rel=1e-4)


def test_fp8_base_stores_the_frozen_model_in_fp8(tmp_path, data_dir):
    _, ref = _train(tmp_path, data_dir, "bf16", mixed_precision="bf16")
    fp8, res = _train(tmp_path, data_dir, "fp8", mixed_precision="bf16", fp8_base_unet=True)
    unet = fp8.models.denoiser
    base = unet.down_blocks[0].attentions[0].transformer_blocks[0].attn1.to_q
    assert base.base_layer.weight.dtype == torch.float8_e4m3fn          # stored in fp8
    assert base.lora_A["default"].weight.dtype == torch.float32         # the LoRA keeps its dtype
    te_linear = [m for m in fp8.models.text_encoders[0].modules() if isinstance(m, torch.nn.Linear)]
    assert te_linear and all(m.weight.dtype != torch.float8_e4m3fn for m in te_linear)   # fp8_base_unet: TE not
    # the first loss comes from the same batch and noise: fp8 weights (3 mantissa bits) move it a little
    assert all(torch.isfinite(torch.tensor(res.losses)))
    assert res.losses[0] == pytest.approx(ref.losses[0], rel=0.1)


def test_memory_options_without_effect_are_said(tmp_path):
    plan = make_plan(_cfg(tmp_path, highvram=True, lowram=True, full_fp16=True, mixed_precision="fp16"))
    why = {u.option: u.why for u in plan.ignored}
    assert "always stay on the device" in why["highvram"] and "host RAM" in why["lowram"]
    assert "full_fp16" not in why and plan.precision.full_fp16 and not plan.refusals
    # sd-scripts' own condition: full_fp16 asserts mixed_precision == "fp16"
    refused = make_plan(_cfg(tmp_path, full_fp16=True, mixed_precision="bf16")).refusals
    assert [u.option for u in refused] == ["full_fp16"] and 'requires mixed_precision = "fp16"' in refused[0].why


def test_full_fp16_trains_the_network_in_fp16(tmp_path, data_dir):
    from safetensors.torch import load_file

    # AdamW's default eps (1e-8) is 0 in fp16, and a fresh LoRA's lora_A gradients are exactly 0 (lora_B starts at
    # 0): 0 / (0 + 0) = NaN, in sd-scripts' full_fp16 too. An eps fp16 can hold keeps the comparison meaningful.
    opts = {"mixed_precision": "fp16", "optimizer_args": ["eps=1e-4"]}
    _, ref = _train(tmp_path, data_dir, "fp32", **opts)   # no GPU: fp16 autocast runs as fp32
    full, res = _train(tmp_path, data_dir, "full", full_fp16=True, **opts)
    layer = full.models.denoiser.down_blocks[0].attentions[0].transformer_blocks[0].attn1.to_q
    assert layer.lora_A["default"].weight.dtype == torch.float16         # the network itself in fp16
    assert layer.lora_A["default"].weight.grad is None or layer.lora_A["default"].weight.grad.dtype == torch.float16
    saved = load_file(str(res.final_model))
    assert {t.dtype for k, t in saved.items() if not k.endswith(".alpha")} == {torch.float16}   # as trained
    assert res.metadata["ss_full_fp16"] == "True"
    # the first step sees the same batch and noise through fp16-rounded LoRA weights: fp16's tolerance
    assert res.losses[0] == pytest.approx(ref.losses[0], rel=2e-3)
    assert res.losses == pytest.approx(ref.losses, rel=2e-2)


def test_full_fp16_lets_the_grad_scaler_unscale_fp16_gradients():
    """sd-scripts' patch_accelerator_for_fp16_training: GradScaler refuses fp16 gradients unless told not to."""
    import types

    from lora_compat.train.precision import allow_fp16_grad_unscaling

    def step(patch: bool) -> torch.Tensor:
        p = torch.nn.Parameter(torch.ones(4, dtype=torch.float16))
        opt = torch.optim.SGD([p], lr=0.1)
        scaler = torch.amp.GradScaler("cpu", init_scale=1024.0)
        if patch:
            assert allow_fp16_grad_unscaling(types.SimpleNamespace(scaler=scaler, distributed_type="NO"))
        scaler.scale((p.float() * 2).sum()).backward()
        scaler.unscale_(opt)
        scaler.step(opt)
        return p.detach()

    with pytest.raises(ValueError, match="unscale FP16 gradients"):
        step(False)
    assert step(True).tolist() == pytest.approx([0.8] * 4, rel=1e-3)   # 1 - 0.1 x 2, the scale removed
    assert not allow_fp16_grad_unscaling(types.SimpleNamespace(scaler=None))   # no scaler (CPU, bf16): nothing
