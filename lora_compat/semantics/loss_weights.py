"""The DDPM noise schedule and the SNR-based loss weights of ``custom_train_functions``, with torch's
float32 arithmetic emulated (golden/loss_weights.json)."""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from functools import lru_cache

_F32 = struct.Struct("<f")


def _f32(x: float) -> float:
    """Round a Python float to the nearest float32 (one IEEE operation's result in torch float32)."""
    if x != x or x in (math.inf, -math.inf):
        return x
    try:
        return _F32.unpack(_F32.pack(x))[0]
    except OverflowError:
        return math.copysign(math.inf, x)


def _sqrt32(x: float) -> float:
    return _f32(math.sqrt(x)) if x >= 0 else math.nan


def _div32(a: float, b: float) -> float:
    if b == 0:
        if a == 0 or a != a:
            return math.nan
        return math.copysign(math.inf, a) * math.copysign(1.0, b)
    return _f32(a / b)


def _linspace32(start: float, end: float, steps: int) -> list[float]:
    # torch.linspace (CPU, float32): start + step*i for the first half, end - step*(steps-1-i) for the
    # second, each rounded once (fused multiply-add), with step = (end - start)/(steps - 1) in float32.
    s, e = _f32(start), _f32(end)
    step = _f32((e - s) / (steps - 1))
    half = steps // 2
    return [_f32(s + step * i) if i < half else _f32(e - step * (steps - 1 - i)) for i in range(steps)]


def _cumprod32(values: Sequence[float]) -> list[float]:
    # torch.cumprod on CPU accumulates float32 inputs in double and rounds each output to float32.
    acc = 1.0
    out = []
    for v in values:
        acc *= v
        out.append(_f32(acc))
    return out


def _zero_terminal_snr_betas(betas: Sequence[float]) -> list[float]:
    # custom_train_functions.fix_noise_scheduler_betas_for_zero_terminal_snr, op by op in float32.
    alphas = [_f32(1.0 - b) for b in betas]
    bar_sqrt = [_sqrt32(a) for a in _cumprod32(alphas)]
    s0, s_last = bar_sqrt[0], bar_sqrt[-1]
    bar_sqrt = [_f32(x - s_last) for x in bar_sqrt]
    factor = _div32(s0, _f32(s0 - s_last))
    bar_sqrt = [_f32(x * factor) for x in bar_sqrt]
    bar = [_f32(x * x) for x in bar_sqrt]
    new_alphas = [bar[0]] + [_div32(bar[i], bar[i - 1]) for i in range(1, len(bar))]
    return [_f32(1.0 - a) for a in new_alphas]


@lru_cache(maxsize=4)
def alphas_cumprod(zero_terminal_snr: bool = False, num_train_timesteps: int = 1000) -> tuple[float, ...]:
    """``alphas_cumprod`` of sd-scripts' DDPMScheduler (scaled_linear, beta 0.00085..0.012), float32.

    With ``zero_terminal_snr`` the betas are first rescaled as ``--zero_terminal_snr`` does.
    """
    lin = _linspace32(0.00085 ** 0.5, 0.012 ** 0.5, num_train_timesteps)
    betas = [_f32(x * x) for x in lin]
    if zero_terminal_snr:
        betas = _zero_terminal_snr_betas(betas)
    return tuple(_cumprod32([_f32(1.0 - b) for b in betas]))


@lru_cache(maxsize=4)
def all_snr(zero_terminal_snr: bool = False, num_train_timesteps: int = 1000) -> tuple[float, ...]:
    """SNR per timestep, ``(sqrt(a)/sqrt(1-a))**2`` of :func:`alphas_cumprod`
    (``prepare_scheduler_for_custom_training``).

    Note: sd-scripts' training computes ``all_snr`` *before* applying ``--zero_terminal_snr`` (so its
    loss weights always use ``all_snr(False)``); ``all_snr(True)`` is the SNR of the rescaled schedule
    (what the golden vectors list under ``zero_terminal_snr: true``).
    """
    out = []
    for a in alphas_cumprod(zero_terminal_snr, num_train_timesteps):
        q = _div32(_sqrt32(a), _sqrt32(_f32(1.0 - a)))
        out.append(_f32(q * q))
    return tuple(out)


def _snr_at(t: int, snr: Sequence[float] | None) -> float:
    return (snr if snr is not None else all_snr())[t]


def min_snr_weight(t: int, gamma: float, *, v_prediction: bool = False, snr: Sequence[float] | None = None) -> float:
    """``apply_snr_weight`` multiplier: ``min(snr, γ)/snr`` (ε) or ``min(snr, γ)/(snr+1)`` (v), float32."""
    s = _snr_at(t, snr)
    m = min(s, _f32(gamma)) if s == s else s
    return _div32(m, _f32(s + 1.0)) if v_prediction else _div32(m, s)


def _capped_snr(t: int, snr: Sequence[float] | None) -> float:
    s = _snr_at(t, snr)
    return min(s, 1000.0) if s == s else s


def debiased_weight(t: int, *, v_prediction: bool = False, snr: Sequence[float] | None = None) -> float:
    """``apply_debiased_estimation`` multiplier: ``1/sqrt(snr')`` (ε) or ``1/(snr'+1)`` (v),
    ``snr' = min(snr, 1000)``."""
    s = _capped_snr(t, snr)
    if v_prediction:
        return _div32(1.0, _f32(s + 1.0))
    return _div32(1.0, _sqrt32(s))


def v_pred_scale(t: int, *, snr: Sequence[float] | None = None) -> float:
    """``get_snr_scale``: ``snr'/(snr'+1)`` (the ``scale_v_pred_loss_like_noise_pred`` multiplier)."""
    s = _capped_snr(t, snr)
    return _div32(s, _f32(s + 1.0))


def v_pred_like_weight(t: int, v_pred_like_loss: float, *, snr: Sequence[float] | None = None,
                       loss: float = 1.0) -> float:
    """``add_v_prediction_like_loss`` applied to ``loss``: ``loss + loss/scale * λ`` (float32)."""
    scale = v_pred_scale(t, snr=snr)
    loss = _f32(loss)
    return _f32(loss + _f32(_div32(loss, scale) * _f32(v_pred_like_loss)))


def loss_weight(
    t: int,
    *,
    min_snr_gamma: float | None = None,
    v_prediction: bool = False,
    scale_v_pred_loss_like_noise_pred: bool = False,
    v_pred_like_loss: float | None = None,
    debiased_estimation_loss: bool = False,
    snr: Sequence[float] | None = None,
) -> float:
    """The total per-sample multiplier sd-scripts applies to a loss of 1.0 at timestep ``t``.

    Order as in ``train_network.py``: min-SNR, v-pred scaling, v-pred-like loss, debiased estimation.
    ``snr`` defaults to :func:`all_snr` without zero-terminal rescaling, as sd-scripts' training uses.
    """
    w = 1.0
    if min_snr_gamma:
        w = _f32(w * min_snr_weight(t, min_snr_gamma, v_prediction=v_prediction, snr=snr))
    if scale_v_pred_loss_like_noise_pred:
        w = _f32(w * v_pred_scale(t, snr=snr))
    if v_pred_like_loss:
        w = v_pred_like_weight(t, v_pred_like_loss, snr=snr, loss=w)
    if debiased_estimation_loss:
        w = _f32(w * debiased_weight(t, v_prediction=v_prediction, snr=snr))
    return w
