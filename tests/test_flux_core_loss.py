"""FLUX.1 loss path against sd-scripts (golden/flux_loss.json): prediction types, SD3 weighting, packing and
twelve whole ``FluxNetworkTrainer.process_batch`` steps with a stub DiT, reproduced by ``flux_loss_step``."""

from __future__ import annotations

import contextlib
import hashlib

import pytest

torch = pytest.importorskip("torch")

from lora_compat.semantics.flux_options import FluxOptions  # noqa: E402
from lora_compat.train.flux.loss import (  # noqa: E402
    apply_model_prediction_type,
    conditional_loss,
    flux_loss_step,
    huber_threshold,
    loss_weighting_sd3,
)
from lora_compat.train.flux.packing import pack_latents, prepare_img_ids, unpack_latents  # noqa: E402
from lora_compat.train.flux.sampling import make_flow_scheduler  # noqa: E402

from shared_data import golden  # noqa: E402

REL = 1e-6
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}


def _close(got: float, expected: float, rel: float = REL) -> bool:
    return abs(got - expected) <= rel * abs(expected) + 1e-12


def _all_close(got, expected, exact: bool = False) -> bool:
    got = [float(x) for x in got]
    if len(got) != len(expected):
        return False
    return all((g == e) if exact else _close(g, e) for g, e in zip(got, expected, strict=True))


def _sha(t) -> str:
    return hashlib.sha256(t.detach().float().contiguous().numpy().tobytes()).hexdigest()


def _dtype_name(t) -> str:
    return str(t.dtype).removeprefix("torch.")


def test_model_prediction_type() -> None:
    data = golden("flux_loss.json")["model_prediction_type"]
    inp = data["inputs"]
    gen = torch.Generator().manual_seed(inp["data_seed"])
    shape = inp["shape"]
    model_pred = torch.randn(shape, generator=gen)
    noisy = torch.randn(shape, generator=gen)
    sigmas = torch.rand(shape[0], generator=gen).view(-1, 1, 1, 1)
    assert _all_close(model_pred.flatten().tolist(), inp["model_pred"], exact=True)
    assert _all_close(sigmas.flatten().tolist(), inp["sigmas"], exact=True)
    assert len(data["cases"]) == 14
    for case in data["cases"]:
        options = FluxOptions(model_prediction_type=case["model_prediction_type"],
                              weighting_scheme=case["weighting_scheme"])
        s = sigmas.to(DTYPES[case["sigmas_dtype"]])
        out, weighting = apply_model_prediction_type(options, model_pred, noisy, s)
        assert _dtype_name(out) == case["output_dtype"]
        assert _all_close(out.flatten().tolist(), case["output"]), case
        if case["weighting"] is None:
            assert weighting is None
        else:
            assert list(weighting.shape) == case["weighting_shape"]
            assert _dtype_name(weighting) == case["weighting_dtype"]
            assert _all_close(weighting.flatten().tolist(), case["weighting"]), case


def test_loss_weighting() -> None:
    cases = golden("flux_loss.json")["loss_weighting"]
    assert len(cases) == 24
    for case in cases:
        dtype = DTYPES[case["sigmas_dtype"]]
        sigmas = torch.tensor(case["sigmas"], dtype=dtype)
        w = loss_weighting_sd3(case["weighting_scheme"], sigmas)
        assert _dtype_name(w) == case["weighting_dtype"]
        assert _all_close(w.tolist(), case["weighting"], exact=dtype == torch.bfloat16), case


def test_pack_unpack_and_ids() -> None:
    cases = golden("flux_loss.json")["pack"]
    assert len(cases) == 4
    for case in cases:
        if "input" in case:
            shape = case["shape"]
            x = torch.arange(torch.Size(shape).numel(), dtype=torch.float32).reshape(shape)
            packed = pack_latents(x)
            assert list(packed.shape) == case["packed_shape"]
            assert packed.flatten().long().tolist() == case["packed"]
            assert torch.equal(unpack_latents(packed, shape[2] // 2, shape[3] // 2), x) is case["unpacked_equals_input"]
            ids = prepare_img_ids(shape[0], shape[2] // 2, shape[3] // 2)
        else:
            ids = prepare_img_ids(*case["prepare_img_ids"])
        assert list(ids.shape) == case["img_ids_shape"] and _dtype_name(ids) == case["img_ids_dtype"]
        assert ids.flatten().long().tolist() == case["img_ids"]


class StubDiT:
    """The golden's stub: pred = img * 0.5 + timesteps + 0.01 * guidance; records its inputs."""

    def __init__(self) -> None:
        self.calls: list[dict] = []

    def __call__(self, *, img, img_ids, txt, txt_ids, y, timesteps, guidance, txt_attention_mask):
        self.calls.append({"img": img, "img_ids": img_ids, "timesteps": timesteps, "guidance": guidance,
                           "txt_attention_mask": txt_attention_mask})
        return img * 0.5 + timesteps[:, None, None] + 0.01 * guidance[:, None, None]


def _options(args: dict) -> FluxOptions:
    return FluxOptions(**{k: v for k, v in args.items() if k in FluxOptions.__dataclass_fields__})


def _check_summary(t, summary: dict) -> None:
    assert list(t.shape) == summary["shape"] and _dtype_name(t) == summary["dtype"]
    assert _close(t.double().sum().item(), summary["sum"], 1e-5)
    assert _all_close(t.flatten()[:4].tolist(), summary["first4"])
    assert _sha(t) == summary["sha256"]


def test_twelve_training_steps() -> None:
    data = golden("flux_loss.json")
    cases = data["cases"]
    assert len(cases) == 12
    for case in cases:
        options = _options(case["args"])
        wdtype = DTYPES[case["weight_dtype"]]
        b, (h, w) = case["batch_size"], case["latent_hw"]
        gen = torch.Generator().manual_seed(case["data_seed"])
        latents = torch.randn(b, 16, h, w, generator=gen)
        l_pooled = torch.randn(b, 768, generator=gen)
        t5_out = torch.randn(b, 4, 8, generator=gen)
        _check_summary(latents, case["latents"])
        conds = (l_pooled, t5_out, torch.zeros(b, 4, 3), torch.ones(b, 4))
        loss_weights = torch.tensor(case["loss_weights"])
        dit = StubDiT()
        # accelerate's autocast under --mixed_precision bf16 on the CPU
        autocast = ((lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if wdtype == torch.bfloat16
                    else contextlib.nullcontext)
        torch.manual_seed(case["seed"])
        if "error" in case:
            with pytest.raises(NotImplementedError, match="Huber schedule 'snr' is not supported"):
                flux_loss_step(dit, latents, conds, options, make_flow_scheduler(options.discrete_flow_shift),
                               weight_dtype=wdtype, loss_weights=loss_weights, autocast=autocast)
            with pytest.raises(ValueError, match="huber_schedule snr"):
                options.validate()
            continue
        options.validate()
        step = flux_loss_step(dit, latents, conds, options, make_flow_scheduler(options.discrete_flow_shift),
                              weight_dtype=wdtype, loss_weights=loss_weights, autocast=autocast)
        call, exp = dit.calls[0], case["dit_call"]
        _check_summary(call["img"], exp["img"])
        ids = call["img_ids"]
        assert list(ids.shape) == exp["img_ids_shape"] and _dtype_name(ids) == exp["img_ids_dtype"]
        assert ids[0, :3].tolist() == exp["img_ids_first3"] and ids[0, -1].tolist() == exp["img_ids_last"]
        assert _dtype_name(call["timesteps"]) == exp["timesteps_dtype"]
        assert _all_close(call["timesteps"].tolist(), exp["timesteps"], exact=wdtype == torch.bfloat16)
        assert call["guidance"].tolist() == exp["guidance"] and _dtype_name(call["guidance"]) == exp["guidance_dtype"]
        assert (call["txt_attention_mask"] is not None) is exp["txt_attention_mask_passed"]
        _check_summary(step.model_pred, case["model_pred"])
        _check_summary(step.target, case["target"])
        assert _dtype_name(step.timesteps) == case["timesteps_dtype"]
        assert _all_close(step.timesteps.tolist(), case["timesteps"], exact=wdtype == torch.bfloat16)
        if case["weighting"] is None:
            assert step.weighting is None
        else:
            assert _all_close(step.weighting.flatten().tolist(), case["weighting"])
        assert _dtype_name(step.loss) == case["loss_dtype"]
        assert _close(step.loss.item(), case["loss"]), (case["name"], step.loss.item(), case["loss"])


def test_huber_threshold_and_losses() -> None:
    t = torch.tensor([0.0, 500.0, 1000.0])
    exp = huber_threshold(FluxOptions(loss_type="huber", huber_schedule="exponential", huber_c=0.1), t)
    assert torch.allclose(exp, torch.tensor([1.0, 0.1 ** 0.5, 0.1]))
    const = huber_threshold(FluxOptions(loss_type="smooth_l1", huber_schedule="constant", huber_c=0.2,
                                        huber_scale=2.0), t)
    assert const.tolist() == [pytest.approx(0.4)] * 3
    assert huber_threshold(FluxOptions(loss_type="l2"), t) is None
    pred, target = torch.tensor([[0.0, 3.0]]), torch.tensor([[0.0, 0.0]])
    c = torch.tensor([1.0])
    # huber = 2c(sqrt(d^2 + c^2) - c): ~ d^2 for small d, ~ 2c|d| for large d
    assert conditional_loss(pred, target, "huber", c)[0, 1].item() == pytest.approx(2 * (10 ** 0.5 - 1))
    assert conditional_loss(pred, target, "smooth_l1", c * 2)[0, 1].item() == pytest.approx(2 * (13 ** 0.5 - 2))
    assert conditional_loss(pred, target, "l1")[0, 1].item() == 3.0
    with pytest.raises(ValueError):
        FluxOptions(timestep_sampling="logit").validate()
