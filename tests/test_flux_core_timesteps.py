"""FLUX.1 timestep sampling and noising against sd-scripts (golden/flux_timesteps.json).

Each case: latents and noise from ``torch.Generator().manual_seed(data_seed)``, ``torch.manual_seed(seed)``
right before the call, the scheduler of the case's shift. Timesteps and sigmas within 1e-6 relative (bf16
exactly), the noisy input's checksum, and the next random number (how many randoms the call drew).
"""

from __future__ import annotations

import hashlib
import math

import pytest

torch = pytest.importorskip("torch")

from lora_compat.semantics.flux_options import FluxOptions  # noqa: E402
from lora_compat.train.flux.sampling import (  # noqa: E402
    density_for_timestep_sampling,
    flux_shift_mu,
    lin_function,
    make_flow_scheduler,
    noisy_model_input_and_timesteps,
    time_shift,
)

from shared_data import golden  # noqa: E402

REL = 1e-6
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}
# Samplings whose sigmas go through sigmoid/exp: their float32 results may differ by an ulp between CPU math
# libraries, so their noisy input is compared by sum and first values, not by the bit-exact checksum.
TRANSCENDENTAL = {"sigmoid", "shift", "flux_shift"}


def _close(got: float, expected: float, rel: float = REL) -> bool:
    return abs(got - expected) <= rel * abs(expected) + 1e-12


def _sha(t) -> str:
    if t.dtype == torch.bfloat16:
        t = t.float()  # the golden hashes bf16 tensors as their float32 values
    return hashlib.sha256(t.contiguous().numpy().tobytes()).hexdigest()


def test_scheduler_tables() -> None:
    data = golden("flux_timesteps.json")["schedulers"]
    assert set(data) == {"shift=1.0", "shift=3.0", "shift=3.1582"}
    for entry in data.values():
        sched = make_flow_scheduler(entry["config"]["shift"])
        assert sched.config.num_train_timesteps == entry["config"]["num_train_timesteps"]
        assert sched.timesteps.tolist() == entry["timesteps"]
        assert sched.sigmas.tolist() == entry["sigmas"]
        assert sched.sigma_min == entry["sigma_min"] and sched.sigma_max == entry["sigma_max"]


def test_lin_function_and_mu() -> None:
    data = golden("flux_timesteps.json")["get_lin_function"]["cases"]
    assert len(data) == 8
    for case in data:
        assert lin_function(y1=0.5, y2=1.15)(case["image_seq_len"]) == case["mu"]
    # flux_shift passes the packed length (h // 2) * (w // 2): 8x8 latents -> 16 tokens, unclamped mu < 0.5
    assert flux_shift_mu(8, 8) == next(c["mu"] for c in data if c["image_seq_len"] == 16)
    assert flux_shift_mu(256, 256) > 1.15


def test_time_shift() -> None:
    data = golden("flux_timesteps.json")["time_shift"]["cases"]
    assert data
    for case in data:
        out = time_shift(case["mu"], case["sigma"], torch.tensor(case["t"], dtype=torch.float32))
        for got, exp in zip(out.tolist(), case["out"], strict=True):
            assert _close(got, exp), (case["mu"], got, exp)


def test_density_for_timestep_sampling() -> None:
    data = golden("flux_timesteps.json")["compute_density_for_timestep_sampling"]["cases"]
    assert {c["weighting_scheme"] for c in data} >= {"uniform", "none", "sigma_sqrt", "cosmap", "logit_normal", "mode"}
    for case in data:
        torch.manual_seed(case["seed"])
        u = density_for_timestep_sampling(case["weighting_scheme"], case["batch_size"], case["logit_mean"],
                                          case["logit_std"], case["mode_scale"])
        assert all(_close(g, e) for g, e in zip(u.tolist(), case["u"], strict=True)), case
        assert torch.rand(()).item() == case["next_torch_rand_after_call"]


def _summary_matches(t, summary: dict, exact: bool) -> None:
    assert list(t.shape) == summary["shape"]
    assert str(t.dtype).removeprefix("torch.") == summary["dtype"]
    assert _close(t.double().sum().item(), summary["sum"], 1e-5)
    assert all(_close(g, e) for g, e in zip(t.flatten()[:4].float().tolist(), summary["first4"], strict=True))
    if exact:
        assert _sha(t) == summary["sha256"]


def test_every_golden_case() -> None:
    cases = golden("flux_timesteps.json")["cases"]
    assert len(cases) == 180
    seen = set()
    for case in cases:
        a = case["args"]
        options = FluxOptions(**a)
        dtype = DTYPES[case["dtype"]]
        gen = torch.Generator().manual_seed(case["data_seed"])
        latents = torch.randn(case["latent_shape"], generator=gen)
        noise = torch.randn(case["latent_shape"], generator=gen)
        assert _sha(latents) == case["latents"]["sha256"] and _sha(noise) == case["noise"]["sha256"]
        sched = make_flow_scheduler(a["discrete_flow_shift"])
        torch.manual_seed(case["seed"])
        out = noisy_model_input_and_timesteps(options, sched, latents, noise, "cpu", dtype)
        assert torch.rand(()).item() == case["next_torch_rand_after_call"], case["seed"]
        assert str(out.timesteps.dtype).removeprefix("torch.") == case["timesteps_dtype"]
        assert str(out.sigmas.dtype).removeprefix("torch.") == case["sigmas_dtype"]
        assert list(out.sigmas.shape) == case["sigmas_shape"]
        exact = dtype == torch.bfloat16
        for got, exp in zip(out.timesteps.float().tolist(), case["timesteps"], strict=True):
            assert got == exp if exact else _close(got, exp), (case["seed"], got, exp)
        for got, exp in zip(out.sigmas.float().flatten().tolist(), case["sigmas"], strict=True):
            assert got == exp if exact else _close(got, exp), (case["seed"], got, exp)
        if "mu" in case:
            assert out.mu == case["mu"]
        else:
            assert out.mu is None
        _summary_matches(out.noisy_model_input, case["noisy_model_input"],
                         exact or a["timestep_sampling"] not in TRANSCENDENTAL)
        seen.add((a["timestep_sampling"], a["weighting_scheme"], case["dtype"], bool(a["ip_noise_gamma"])))
    assert ("sigma", "mode", "bfloat16", False) in seen and any(s[3] for s in seen)


def test_noise_then_timesteps_order() -> None:
    """The flow-matching interpolation (1 - sigma) x + sigma eps, endpoints included."""
    x = torch.randn(2, 16, 4, 4)
    eps = torch.randn(2, 16, 4, 4)
    sched = make_flow_scheduler(1.0)
    options = FluxOptions(timestep_sampling="uniform")
    torch.manual_seed(0)
    out = noisy_model_input_and_timesteps(options, sched, x, eps, "cpu", torch.float32)
    s = out.sigmas
    assert torch.allclose(out.noisy_model_input, (1 - s) * x + s * eps)
    assert math.isclose(out.timesteps[0].item(), s.flatten()[0].item() * 1000, rel_tol=1e-6)
