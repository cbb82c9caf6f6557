"""SNR table and loss weights against sd-scripts' custom_train_functions (golden/loss_weights.json)."""

from __future__ import annotations

import itertools
import math

import pytest

from lora_compat.semantics import (
    all_snr,
    alphas_cumprod,
    debiased_weight,
    loss_weight,
    min_snr_weight,
    v_pred_like_weight,
    v_pred_scale,
)

from shared_data import golden

EXPECTED_CASES = 2
TIMESTEPS = 1000
REL = 1e-6
# With zero_terminal_snr the schedule is rebuilt from sqrt(alphas_cumprod). The golden file was made on a
# CPU where torch's float32 sqrt (MKL VML, non-Intel code path refining the hardware rsqrtps estimate) is
# off by one ulp for ~19 % of inputs, and 1 - alphas_cumprod cancels near t = 0, amplifying that ~100x. The
# pure-Python twin rounds every op correctly. Both sides of this comparison are fixed (a file and pure Python,
# the same on every machine), so the tolerance below is not a platform's last bit; that each of them, and the
# engine's torch table, lies within float32 rounding of the exact table is checked with a derived bound in
# test_zero_terminal_snr_schedule_within_float32_rounding.
REL_ZERO_TERMINAL = 3e-5


def _close(got: float, expected: float, rel: float) -> bool:
    if math.isnan(expected):
        return math.isnan(got)
    if math.isinf(expected):
        return got == expected
    return abs(got - expected) <= rel * abs(expected) + 1e-30


def _parse(key: str) -> dict[str, str]:
    return dict(part.split("=") for part in key.split(","))


def test_every_golden_loss_weight() -> None:
    cases = golden("loss_weights.json")["cases"]
    assert len(cases) == EXPECTED_CASES
    assert {c["zero_terminal_snr"] for c in cases} == {False, True}
    checked = 0
    for case in cases:
        checked += _check_case(case)
    assert checked == EXPECTED_CASES * TIMESTEPS * 11


def _check_case(case: dict) -> int:
    """Every weight of one golden case (one zero_terminal_snr setting); the number of values compared."""
    zts = case["zero_terminal_snr"]
    rel = REL_ZERO_TERMINAL if zts else REL
    snr = all_snr(zts)
    bad = []
    checked = 0

    def check(label: str, fn, expected: list[float]) -> None:
        nonlocal checked
        assert len(expected) == TIMESTEPS, label
        for t in range(TIMESTEPS):
            got = fn(t)
            checked += 1
            if not _close(got, expected[t], rel):
                bad.append((zts, label, t, got, expected[t]))

    check("snr", lambda t: snr[t], case["snr"])
    for key, values in case["min_snr"].items():
        p = _parse(key)
        gamma, vp = float(p["gamma"]), p["v_prediction"] == "True"
        check(key, lambda t, g=gamma, v=vp: min_snr_weight(t, g, v_prediction=v, snr=snr), values)
    for key, values in case["debiased"].items():
        vp = _parse(key)["v_prediction"] == "True"
        check(key, lambda t, v=vp: debiased_weight(t, v_prediction=v, snr=snr), values)
    check("scale_v", lambda t: v_pred_scale(t, snr=snr), case["scale_v_pred_loss_like_noise_pred"])
    check("v_like", lambda t: v_pred_like_weight(t, 0.1, snr=snr), case["v_pred_like_loss_0.1"])
    assert not bad, bad[:5]
    return checked


def test_schedule_shape() -> None:
    ac = alphas_cumprod()
    assert len(ac) == TIMESTEPS and all(a > b for a, b in itertools.pairwise(ac))
    zts = alphas_cumprod(True)
    assert zts[-1] == 0.0 and zts[0] == ac[0]


def test_loss_weight_combines_in_sd_scripts_order() -> None:
    t = 10
    w = loss_weight(t, min_snr_gamma=5.0, debiased_estimation_loss=True)
    assert w == pytest.approx(min_snr_weight(t, 5.0) * debiased_weight(t), rel=1e-6)
    assert loss_weight(t) == 1.0
    assert loss_weight(t, v_pred_like_loss=0.1) == v_pred_like_weight(t, 0.1)
    # training uses the SNR table from before --zero_terminal_snr unless told otherwise
    assert loss_weight(999, min_snr_gamma=5.0) == min_snr_weight(999, 5.0, snr=all_snr(False))


# --------------------------------------------------------------------------------------------------------------
# The engine's zero-terminal-SNR schedule is sd-scripts' op sequence run by torch in float32. What sd-scripts
# guarantees for it is no more than that: every float32 op (linspace, square, 1 - x, cumprod, sqrt, divisions)
# rounded to within one ulp of its exact result -- which torch does on every CPU, though not always to the same
# last bit (MKL's sqrt is correctly rounded on Intel, one ulp off for ~19 % of inputs on the machine that made the
# golden file). So the engine's table (and the golden one) must lie within the first-order propagation of one ulp
# per op around the exact (real-number) result: |table - exact| <= Σ_ops |∂snr/∂δ_op| · ulp. The bound is computed
# here by differentiating the op sequence with respect to a relative rounding error δ per op output.

ULP = 2.0 ** -23          # one float32 ulp, relative: any faithfully rounded op is within it
_OPS = ("lin", "square", "one_minus_beta", "cumprod", "sqrt", "minus_last", "first_minus_last", "factor", "scaled",
        "squared", "ratio", "beta", "alpha", "alphas_cumprod", "sqrt_ac", "one_minus_ac", "sqrt_om", "quotient",
        "snr")
_ULPS = {"lin": 2.0}      # torch.linspace: start + i * step, two roundings


def _zts_snr(deltas, torch):
    """The SNR of sd-scripts' zero-terminal-SNR schedule in float64 with op ``k``'s output scaled by
    (1 + deltas[k]); the last timestep (SNR exactly 0: x - x) is left out."""
    from lora_compat.semantics.loss_weights import _linspace32

    it = iter(deltas)

    def rounded(x):
        return x * (1 + next(it))

    lin = rounded(torch.tensor(_linspace32(0.00085 ** 0.5, 0.012 ** 0.5, TIMESTEPS), dtype=torch.float64))
    betas = rounded(lin * lin)
    bar_sqrt = rounded(torch.sqrt(rounded(torch.cumprod(rounded(1 - betas), 0))))
    first, last = bar_sqrt[0], bar_sqrt[-1]
    shifted = rounded(bar_sqrt - last)
    factor = rounded(first / rounded(first - last))
    bar = rounded(rounded(shifted * factor) ** 2)
    alphas = torch.cat([bar[:1], rounded(bar[1:] / bar[:-1])])
    ac = rounded(torch.cumprod(rounded(1 - rounded(1 - alphas)), 0))[:-1]
    return rounded(rounded(rounded(torch.sqrt(ac)) / rounded(torch.sqrt(rounded(1 - ac)))) ** 2)


def _zts_exact_and_bound(torch):
    n = TIMESTEPS
    late = {"sqrt_ac", "one_minus_ac", "sqrt_om", "quotient", "snr"}
    shapes = [() if op in ("first_minus_last", "factor") else (n - 1,) if op == "ratio" or op in late else (n,)
              for op in _OPS]
    zeros = tuple(torch.zeros(s, dtype=torch.float64) for s in shapes)
    jac = torch.autograd.functional.jacobian(lambda *d: _zts_snr(list(d), torch), zeros, vectorize=True)
    bound = sum(_ULPS.get(op, 1.0) * ULP * j.abs().reshape(n - 1, -1).sum(1) for op, j in zip(_OPS, jac, strict=True))
    return _zts_snr(list(zeros), torch).tolist(), bound.tolist()


def test_zero_terminal_snr_schedule_within_float32_rounding() -> None:
    """The engine's torch schedule and sd-scripts' own (golden) both lie within float32 rounding of the exact
    zero-terminal-SNR table; the pure-Python twin (correctly rounded float32) too."""
    pytest.importorskip("torch")
    pytest.importorskip("diffusers")
    import torch

    from lora_compat.train.noise import make_noise_scheduler

    exact, bound = _zts_exact_and_bound(torch)
    # the bound is a real tolerance, not a loophole: at most a few parts in 10^3 where 1 - alphas_cumprod cancels
    assert max(b / e for b, e in zip(bound, exact, strict=True)) < 3e-3
    case = next(c for c in golden("loss_weights.json")["cases"] if c["zero_terminal_snr"])
    ac = make_noise_scheduler(zero_terminal_snr=True).alphas_cumprod
    engine = ((torch.sqrt(ac) / torch.sqrt(1.0 - ac)) ** 2).tolist()
    pure = all_snr(True)
    for name, table in (("engine", engine), ("golden", case["snr"]), ("pure-Python twin", pure)):
        bad = [(t, table[t], exact[t], bound[t]) for t in range(TIMESTEPS - 1)
               if abs(table[t] - exact[t]) > bound[t]]
        assert not bad, (name, bad[:5])
        assert table[-1] == 0.0, name   # sqrt(x) - sqrt(x) is 0 in IEEE arithmetic on every machine
