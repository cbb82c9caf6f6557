"""sd-scripts' training algorithms as pure functions (stdlib only: no torch, no numpy).

Everything here mirrors a function of kohya-ss/sd-scripts closely enough that the golden vectors in
``../shared/golden/{captions,buckets,loss_weights,lr_schedules}.json`` are reproduced:

* :func:`process_caption` — ``BaseDataset.process_caption`` (library/train_util.py), consuming Python's
  ``random`` in the same order, so ``random.seed(s)`` before the call gives sd-scripts' result.
* :func:`make_bucket_resolutions`, :class:`BucketSelector`, :func:`select_bucket`, :func:`crop_ltrb` —
  ``model_util.make_bucket_resolutions`` and ``train_util.BucketManager``.
* :func:`alphas_cumprod`, :func:`all_snr`, :func:`min_snr_weight`, :func:`debiased_weight`,
  :func:`v_pred_scale`, :func:`v_pred_like_weight`, :func:`loss_weight` — ``custom_train_functions``
  on the diffusers DDPM ``scaled_linear`` schedule, with torch's float32 arithmetic emulated.
* :func:`warmup_steps`, :func:`lr_lambda`, :func:`lr_schedule` — ``train_util.get_scheduler_fix`` and the
  transformers/diffusers schedule functions it calls.
* :func:`parse_prompt_attention`, :func:`chunk_token_ids` — weighted-caption parsing
  (``custom_train_functions.parse_prompt_attention``) and ``max_token_length`` chunking
  (``BaseDataset.get_input_ids`` / ``strategy_base._get_input_ids``).

It is imported by plan/lint (which must not import torch) and by the training engine. The meaning of
each option is documented in ``schemas/``; the function-level contract is in ``docs/api.md``.
"""

from __future__ import annotations

import math
import random as _random_module
import re
import struct
from dataclasses import dataclass, fields
from functools import lru_cache
from typing import Any, Callable, Mapping, Protocol, Sequence

__all__ = [
    "CaptionParams",
    "process_caption",
    "effective_token_warmup_step",
    "make_bucket_resolutions",
    "round_bucket_limits",
    "BucketSelector",
    "select_bucket",
    "crop_ltrb",
    "alphas_cumprod",
    "all_snr",
    "min_snr_weight",
    "debiased_weight",
    "v_pred_scale",
    "v_pred_like_weight",
    "loss_weight",
    "warmup_steps",
    "lr_lambda",
    "lr_schedule",
    "SCHEDULER_NAMES",
    "parse_prompt_attention",
    "chunk_token_ids",
]


class RandomLike(Protocol):
    """The part of :mod:`random` that caption processing uses (the module itself or a ``random.Random``)."""

    def random(self) -> float: ...
    def shuffle(self, x: list[Any]) -> None: ...
    def choice(self, seq: Sequence[Any]) -> Any: ...


# ==================================================================================================
# Captions
# ==================================================================================================


@dataclass(frozen=True)
class CaptionParams:
    """The subset parameters :func:`process_caption` reads, with sd-scripts' ``BaseSubset`` defaults.

    Names are sd-scripts' dataset-config keys. ``token_warmup_step`` may be a ratio (< 1) of
    ``max_train_steps``, exactly as in sd-scripts.
    """

    shuffle_caption: bool = False
    caption_separator: str = ","
    keep_tokens: int = 0
    keep_tokens_separator: str | None = ""
    secondary_separator: str | None = None
    enable_wildcard: bool = False
    caption_dropout_rate: float = 0.0
    caption_dropout_every_n_epochs: int = 0
    caption_tag_dropout_rate: float = 0.0
    caption_prefix: str | None = None
    caption_suffix: str | None = None
    token_warmup_min: int = 1
    token_warmup_step: float = 0

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> "CaptionParams":
        """Build from a dict of dataset-config keys; keys that are not caption parameters are ignored,
        and ``None`` values take the default (as sd-scripts' config blueprint does)."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in names and v is not None})

    @property
    def uses_token_block(self) -> bool:
        """True when sd-scripts re-splits and re-joins the tags (shuffle, warmup or tag dropout set).

        Only then do ``keep_tokens`` / ``keep_tokens_separator`` have an effect."""
        return bool(self.shuffle_caption or self.token_warmup_step > 0 or self.caption_tag_dropout_rate > 0)


def effective_token_warmup_step(token_warmup_step: float, max_train_steps: int) -> int | float:
    """``token_warmup_step`` as sd-scripts uses it: a value < 1 is a ratio of ``max_train_steps``
    (``floor(ratio * max_train_steps)``); other values are step counts."""
    if token_warmup_step < 1:
        return math.floor(token_warmup_step * max_train_steps)
    return token_warmup_step


_WILDCARD = re.compile(r"\{([^}]+)\}")


def _expand_wildcards(caption: str, rng: RandomLike) -> str:
    # `{{` / `}}` are literal braces: hide them behind placeholders that cannot occur in the caption.
    open_mark, close_mark = "\u2985", "\u2986"
    while open_mark in caption or close_mark in caption:
        open_mark += "\u2985"
        close_mark += "\u2986"
    caption = caption.replace("{{", open_mark).replace("}}", close_mark)
    caption = _WILDCARD.sub(lambda m: rng.choice(m.group(1).split("|")), caption)
    return caption.replace(open_mark, "{").replace(close_mark, "}")


def process_caption(
    caption: str,
    params: CaptionParams | Mapping[str, Any],
    *,
    epoch: int,
    step: int,
    max_train_steps: int,
    rng: RandomLike | None = None,
) -> str:
    """Apply sd-scripts' per-sample caption processing (``BaseDataset.process_caption``).

    ``epoch`` is the dataset's ``current_epoch`` (1-based in training, 0 for the lagging first batch of a
    worker, see the reference §4.4.4), ``step`` its ``current_step`` (the optimizer step), and
    ``max_train_steps`` resolves a ratio ``token_warmup_step``. ``rng`` defaults to the global
    :mod:`random` module; draws happen in sd-scripts' order (caption dropout, line choice, wildcards,
    shuffle, tag dropout), so seeding it the same way gives the same caption.
    """
    p = params if isinstance(params, CaptionParams) else CaptionParams.from_mapping(params)
    r: RandomLike = rng if rng is not None else _random_module

    if p.caption_prefix:
        caption = p.caption_prefix + " " + caption
    if p.caption_suffix:
        caption = caption + " " + p.caption_suffix

    # Whole-caption dropout: the rate draws a random number only when it is > 0 (consumes the RNG).
    drop = p.caption_dropout_rate > 0 and r.random() < p.caption_dropout_rate
    drop = drop or (p.caption_dropout_every_n_epochs > 0 and epoch % p.caption_dropout_every_n_epochs == 0)
    if drop:
        return ""

    if p.enable_wildcard:
        if "\n" in caption:
            caption = r.choice(caption.split("\n"))
        caption = _expand_wildcards(caption, r)
    else:
        caption = caption.split("\n")[0]

    if p.uses_token_block:
        sep = p.caption_separator
        fixed: list[str] = []
        flex: list[str] = []
        fixed_suffix: list[str] = []
        kts = p.keep_tokens_separator
        if kts and kts in caption:
            fixed_part, flex_part = caption.split(kts, 1)
            if kts in flex_part:
                flex_part, suffix_part = flex_part.split(kts, 1)
                fixed_suffix = [t.strip() for t in suffix_part.split(sep) if t.strip()]
            fixed = [t.strip() for t in fixed_part.split(sep) if t.strip()]
            flex = [t.strip() for t in flex_part.split(sep) if t.strip()]
        else:
            # Empty tags are kept on this path (sd-scripts does not filter them here).
            tokens = [t.strip() for t in caption.strip().split(sep)]
            flex = tokens[:]
            if p.keep_tokens > 0:
                fixed = tokens[: p.keep_tokens]
                flex = tokens[p.keep_tokens :]

        warmup = effective_token_warmup_step(p.token_warmup_step, max_train_steps)
        if warmup and step < warmup:
            n = math.floor(step * ((len(flex) - p.token_warmup_min) / warmup)) + p.token_warmup_min
            flex = flex[:n]

        if p.shuffle_caption:
            r.shuffle(flex)
        if p.caption_tag_dropout_rate > 0:
            flex = [t for t in flex if r.random() >= p.caption_tag_dropout_rate]

        # The joiner is always ", " whatever caption_separator is (sd-scripts behaviour).
        caption = ", ".join(fixed + flex + fixed_suffix)

    if p.secondary_separator:
        caption = caption.replace(p.secondary_separator, p.caption_separator)
    return caption


# ==================================================================================================
# Buckets
# ==================================================================================================


def make_bucket_resolutions(
    max_reso: tuple[int, int], min_size: int = 256, max_size: int = 1024, divisible: int = 64
) -> list[tuple[int, int]]:
    """The predefined bucket list (``model_util.make_bucket_resolutions``), sorted ``(width, height)``.

    One square bucket of the same area as ``max_reso``, then for every width from ``min_size`` to
    ``max_size`` in ``divisible`` steps the tallest height (<= ``max_size``) keeping the area <= the
    max area, and its transpose.
    """
    max_width, max_height = max_reso
    max_area = max_width * max_height
    resos: set[tuple[int, int]] = set()
    side = int(math.sqrt(max_area) // divisible) * divisible
    resos.add((side, side))
    width = min_size
    while width <= max_size:
        height = min(max_size, int((max_area // width) // divisible) * divisible)
        if height >= min_size:
            resos.add((width, height))
            resos.add((height, width))
        width += divisible
    return sorted(resos)


def round_bucket_limits(min_bucket_reso: int, max_bucket_reso: int, bucket_reso_steps: int) -> tuple[int, int]:
    """sd-scripts' dataset-level adjustment: min rounded down, max rounded up to ``bucket_reso_steps``."""
    lo = min_bucket_reso - min_bucket_reso % bucket_reso_steps
    hi = max_bucket_reso
    if hi % bucket_reso_steps != 0:
        hi = hi - hi % bucket_reso_steps + bucket_reso_steps
    return lo, hi


class BucketSelector:
    """Assigns images to buckets like sd-scripts' ``BucketManager.select_bucket``.

    With ``no_upscale=False`` the buckets are the predefined ones (``make_bucket_resolutions`` unless
    ``predefined`` is given, e.g. the single ``resolution`` bucket when bucketing is off). With
    ``no_upscale=True`` each image gets its own bucket (min/max reso are ignored, as in sd-scripts).
    """

    def __init__(
        self,
        resolution: tuple[int, int],
        *,
        min_bucket_reso: int | None = 256,
        max_bucket_reso: int | None = 1024,
        bucket_reso_steps: int | None = 64,
        no_upscale: bool = False,
        predefined: Sequence[tuple[int, int]] | None = None,
    ) -> None:
        self.resolution = (int(resolution[0]), int(resolution[1]))
        self.max_area = self.resolution[0] * self.resolution[1]
        self.reso_steps = bucket_reso_steps
        self.no_upscale = no_upscale
        self.predefined: list[tuple[int, int]] = []
        if predefined is not None:
            self.predefined = [tuple(r) for r in predefined]  # type: ignore[misc]
        elif not no_upscale:
            if min_bucket_reso is None or max_bucket_reso is None or not bucket_reso_steps:
                raise ValueError("bucketing with upscaling needs min_bucket_reso, max_bucket_reso and "
                                 "bucket_reso_steps")
            self.predefined = make_bucket_resolutions(self.resolution, min_bucket_reso, max_bucket_reso,
                                                      bucket_reso_steps)
        self._predefined_set = set(self.predefined)
        self._aspects = [w / h for w, h in self.predefined]

    def _round_to_steps(self, x: float) -> int:
        if not self.reso_steps:
            raise ValueError("bucket_no_upscale needs bucket_reso_steps")
        xi = int(x + 0.5)
        return xi - xi % self.reso_steps

    def select(self, image_width: int, image_height: int) -> tuple[tuple[int, int], tuple[int, int], float]:
        """Return ``(bucket (w,h), resized size (w,h), aspect-ratio error)`` for one image."""
        aspect = image_width / image_height
        if not self.no_upscale:
            reso = (image_width, image_height)
            if reso not in self._predefined_set:
                # argmin of |bucket_ar - ar|; ties go to the first bucket in sorted order (numpy argmin).
                best = min(range(len(self._aspects)), key=lambda i: abs(self._aspects[i] - aspect))
                reso = self.predefined[best]
            bucket_aspect = reso[0] / reso[1]
            # Cover the bucket: scale on the side that is short relative to the bucket.
            scale = reso[1] / image_height if aspect > bucket_aspect else reso[0] / image_width
            resized = (int(image_width * scale + 0.5), int(image_height * scale + 0.5))
        else:
            if image_width * image_height > self.max_area:
                rw = math.sqrt(self.max_area * aspect)
                rh = self.max_area / rw
                bw = self._round_to_steps(rw)
                bh_w = self._round_to_steps(bw / aspect)
                ar_w = bw / bh_w
                bh = self._round_to_steps(rh)
                bw_h = self._round_to_steps(bh * aspect)
                ar_h = bw_h / bh
                if abs(ar_w - aspect) < abs(ar_h - aspect):
                    resized = (bw, int(bw / aspect + 0.5))
                else:
                    resized = (int(bh * aspect + 0.5), bh)
            else:
                resized = (image_width, image_height)
            steps = self.reso_steps or 1
            reso = (resized[0] - resized[0] % steps, resized[1] - resized[1] % steps)
        return reso, resized, reso[0] / reso[1] - aspect


def select_bucket(
    image_size: tuple[int, int],
    resolution: tuple[int, int],
    *,
    min_bucket_reso: int = 256,
    max_bucket_reso: int = 1024,
    bucket_reso_steps: int = 64,
    no_upscale: bool = False,
) -> tuple[tuple[int, int], tuple[int, int], float]:
    """:meth:`BucketSelector.select` for one image (selectors are cached per bucket setting)."""
    sel = _cached_selector(tuple(resolution), min_bucket_reso, max_bucket_reso, bucket_reso_steps, no_upscale)
    return sel.select(int(image_size[0]), int(image_size[1]))


@lru_cache(maxsize=32)
def _cached_selector(resolution: tuple[int, int], lo: int, hi: int, steps: int, no_upscale: bool) -> BucketSelector:
    return BucketSelector(resolution, min_bucket_reso=lo, max_bucket_reso=hi, bucket_reso_steps=steps,
                          no_upscale=no_upscale)


def crop_ltrb(bucket_reso: tuple[int, int], image_size: tuple[int, int]) -> tuple[int, int, int, int]:
    """SDXL crop conditioning as sd-scripts computes it (``BucketManager.get_crop_ltrb``).

    A letterbox ("fit inside") offset of the image aspect inside the bucket, independent of the crop
    actually made; returned as ints ``(left, top, right, bottom)``.
    """
    bucket_ar = bucket_reso[0] / bucket_reso[1]
    image_ar = image_size[0] / image_size[1]
    if bucket_ar > image_ar:
        rw, rh = bucket_reso[1] * image_ar, bucket_reso[1]
    else:
        rw, rh = bucket_reso[0], bucket_reso[0] / image_ar
    left = (bucket_reso[0] - rw) // 2
    top = (bucket_reso[1] - rh) // 2
    return int(left), int(top), int(left + rw), int(top + rh)


# ==================================================================================================
# Noise schedule and loss weights (torch float32 emulated)
# ==================================================================================================

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
    s0, sT = bar_sqrt[0], bar_sqrt[-1]
    bar_sqrt = [_f32(x - sT) for x in bar_sqrt]
    factor = _div32(s0, _f32(s0 - sT))
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
    """SNR per timestep, ``(sqrt(a)/sqrt(1-a))**2`` of :func:`alphas_cumprod` (``prepare_scheduler_for_custom_training``).

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
    """``apply_debiased_estimation`` multiplier: ``1/sqrt(snr')`` (ε) or ``1/(snr'+1)`` (v), ``snr' = min(snr, 1000)``."""
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


# ==================================================================================================
# Learning-rate schedules
# ==================================================================================================

SCHEDULER_NAMES = (
    "constant",
    "constant_with_warmup",
    "linear",
    "cosine",
    "cosine_with_restarts",
    "polynomial",
    "inverse_sqrt",
    "cosine_with_min_lr",
    "warmup_stable_decay",
    "piecewise_constant",
    "adafactor",
)
"""Scheduler names ``--lr_scheduler`` accepts (transformers' SchedulerType values sd-scripts can build,
plus diffusers' piecewise_constant and sd-scripts' ``adafactor[:lr]``)."""


def warmup_steps(value: int | float | None, max_train_steps: int, num_processes: int = 1) -> int:
    """``lr_warmup_steps`` / ``lr_decay_steps`` in scheduler steps: a Python float is a ratio of
    ``max_train_steps * num_processes`` (truncated), an int a step count (``get_scheduler_fix``)."""
    if value is None:
        return 0
    if isinstance(value, float):
        return int(value * max_train_steps * num_processes)
    return int(value)


def _parse_piecewise_rules(rules: str) -> tuple[dict[int, float], float]:
    # diffusers get_piecewise_constant_schedule: "1:10,0.1:20,0.01" -> {10: 1.0, 20: 0.1}, last 0.01
    parts = rules.split(",")
    table: dict[int, float] = {}
    for part in parts[:-1]:
        value, steps = part.split(":")
        table[int(steps)] = float(value)
    return table, float(parts[-1])


def lr_lambda(
    lr_scheduler: str,
    max_train_steps: int,
    *,
    lr_warmup_steps: int | float | None = 0,
    lr_decay_steps: int | float | None = 0,
    lr_scheduler_num_cycles: int | None = 1,
    lr_scheduler_power: float | None = 1.0,
    lr_scheduler_timescale: int | None = None,
    lr_scheduler_min_lr_ratio: float | None = None,
    lr_scheduler_args: Mapping[str, Any] | None = None,
    learning_rate: float = 2e-6,
    num_processes: int = 1,
) -> Callable[[int], float]:
    """The multiplier ``f(t)`` of the scheduler sd-scripts builds (``get_scheduler_fix``).

    ``t`` counts scheduler steps (``num_processes`` per optimizer step); the LR of a parameter group is
    ``group_lr * f(t)``. ``learning_rate`` matters only for ``polynomial`` (its ``lr_init``).
    Raises ``ValueError`` exactly where sd-scripts/transformers would (unknown name, warmup with
    ``constant``, ``cosine_with_min_lr`` without a min lr, ``polynomial`` with lr <= lr_end,
    ``adafactor`` which depends on optimizer state).
    """
    name = lr_scheduler
    args = dict(lr_scheduler_args or {})
    n = max_train_steps * num_processes
    w = warmup_steps(lr_warmup_steps, max_train_steps, num_processes)
    d = warmup_steps(lr_decay_steps, max_train_steps, num_processes)
    cycles = lr_scheduler_num_cycles if lr_scheduler_num_cycles is not None else 1
    power = lr_scheduler_power if lr_scheduler_power is not None else 1.0

    def lin(t: int) -> float:
        return float(t) / float(max(1, w))

    if name.startswith("adafactor"):
        raise ValueError("the adafactor schedule is computed by the Adafactor optimizer from its state; "
                         "it has no closed form")
    if name == "piecewise_constant":
        rules = args.get("step_rules")
        if rules is None:
            raise ValueError("piecewise_constant needs step_rules in lr_scheduler_args, e.g. "
                             "step_rules=\"1:100,0.1:200,0.01\" (diffusers fails without it)")
        try:
            table, last = _parse_piecewise_rules(str(rules))
        except ValueError:
            raise ValueError(f"step_rules {rules!r} is not 'mult:step,...,last_mult'") from None

        def piecewise(t: int) -> float:
            for boundary in sorted(table):
                if t < boundary:
                    return table[boundary]
            return last

        return piecewise
    if name not in SCHEDULER_NAMES:
        raise ValueError(f"unknown lr_scheduler {name!r}; expected one of {', '.join(SCHEDULER_NAMES)}")

    if name == "constant":
        if w:
            raise ValueError(f"lr_scheduler constant does not accept a warmup (lr_warmup_steps={lr_warmup_steps!r})")
        return lambda t: 1.0
    if name == "constant_with_warmup":
        return lambda t: lin(t) if t < w else 1.0
    if name == "linear":
        return lambda t: lin(t) if t < w else max(0.0, float(n - t) / float(max(1, n - w)))
    if name == "cosine":
        # sd-scripts does not pass num_cycles to plain cosine: transformers' default 0.5 (a half wave).
        def cosine(t: int) -> float:
            if t < w:
                return lin(t)
            progress = float(t - w) / float(max(1, n - w))
            return max(0.0, 0.5 * (1.0 + math.cos(math.pi * 0.5 * 2.0 * progress)))

        return cosine
    if name == "cosine_with_restarts":
        def restarts(t: int) -> float:
            if t < w:
                return lin(t)
            progress = float(t - w) / float(max(1, n - w))
            if progress >= 1.0:
                return 0.0
            return max(0.0, 0.5 * (1.0 + math.cos(math.pi * ((float(cycles) * progress) % 1.0))))

        return restarts
    if name == "polynomial":
        lr_end = float(args.get("lr_end", 1e-7))
        lr_init = float(learning_rate)
        if not lr_init > lr_end:
            raise ValueError(f"lr_end ({lr_end}) must be smaller than the initial lr ({lr_init})")

        def polynomial(t: int) -> float:
            if t < w:
                return lin(t)
            if t > n:
                return lr_end / lr_init
            pct_remaining = 1 - (t - w) / (n - w)
            return ((lr_init - lr_end) * pct_remaining ** power + lr_end) / lr_init

        return polynomial
    if name == "inverse_sqrt":
        timescale = lr_scheduler_timescale or args.get("timescale") or (w or 10_000)

        def inverse_sqrt(t: int) -> float:
            if t < w:
                return lin(t)
            shift = timescale - w
            return 1.0 / math.sqrt((t + shift) / timescale)

        return inverse_sqrt
    if name == "cosine_with_min_lr":
        m = lr_scheduler_min_lr_ratio if lr_scheduler_min_lr_ratio is not None else args.get("min_lr_rate")
        if m is not None and args.get("min_lr") is not None:
            raise ValueError("give either lr_scheduler_min_lr_ratio or min_lr (transformers refuses both)")
        if m is None and args.get("min_lr") is not None:
            m = float(args["min_lr"]) / float(learning_rate)
        if m is None:
            raise ValueError("cosine_with_min_lr needs lr_scheduler_min_lr_ratio (or min_lr in lr_scheduler_args)")
        half = cycles / 2

        def cosine_min(t: int) -> float:
            if t < w:
                return lin(t)
            progress = float(t - w) / float(max(1, n - w))
            f = 0.5 * (1.0 + math.cos(math.pi * float(half) * 2.0 * progress))
            return max(0.0, f * (1.0 - m) + m)

        return cosine_min
    # warmup_stable_decay (transformers get_wsd_schedule)
    m = float(lr_scheduler_min_lr_ratio or 0.0)
    stable = n - w - d
    half = cycles / 2
    warmup_type = args.get("warmup_type", "linear")
    decay_type = args.get("decay_type", "cosine")

    def wsd(t: int) -> float:
        if t < w:
            progress = float(t) / float(max(1, w))
            if warmup_type == "linear":
                factor = progress
            elif warmup_type == "cosine":
                factor = 0.5 * (1.0 - math.cos(math.pi * progress))
            else:  # "1-sqrt"
                factor = 1.0 - math.sqrt(1.0 - progress)
            return max(0.0, factor * (1.0 - m) + m)
        if t < w + stable:
            return 1.0
        if t < w + stable + d:
            progress = float(t - w - stable) / float(max(1, d))
            if decay_type == "linear":
                factor = 1.0 - progress
            elif decay_type == "cosine":
                factor = 0.5 * (1.0 + math.cos(math.pi * float(half) * 2.0 * progress))
            else:  # "1-sqrt"
                factor = 1.0 - math.sqrt(progress)
            return max(0.0, factor * (1.0 - m) + m)
        return m

    return wsd


def lr_schedule(base_lr: float, max_train_steps: int, lr_scheduler: str, **kwargs: Any) -> list[float]:
    """The LR read before each scheduler step: ``[base_lr * f(t) for t in range(max_train_steps*num_processes)]``.

    ``kwargs`` are those of :func:`lr_lambda` (sd-scripts option names); ``learning_rate`` defaults to
    ``base_lr`` (the optimizer's default lr, which ``polynomial`` decays from).
    """
    kwargs.setdefault("learning_rate", base_lr)
    f = lr_lambda(lr_scheduler, max_train_steps, **kwargs)
    n = max_train_steps * int(kwargs.get("num_processes", 1))
    return [base_lr * f(t) for t in range(n)]


# ==================================================================================================
# Prompts: weighted captions and long-prompt chunking
# ==================================================================================================

_ATTENTION = re.compile(r"""
\\\(|\\\)|\\\[|\\]|\\\\|\\|\(|\[|:([+-]?[.\d]+)\)|\)|]|[^\\()\[\]:]+|:
""", re.X)


def parse_prompt_attention(text: str) -> list[tuple[str, float]]:
    """Split a weighted caption into ``(text, weight)`` pieces (``--weighted_captions``).

    ``(x)`` multiplies by 1.1, ``[x]`` divides by 1.1, ``(x:w)`` multiplies by ``w``; ``\\(``, ``\\)``,
    ``\\[``, ``\\]``, ``\\\\`` are literals; unclosed brackets apply to the rest; neighbouring pieces with
    equal weight are merged; an empty text gives ``[("", 1.0)]``.
    """
    pieces: list[list[Any]] = []
    round_open: list[int] = []
    square_open: list[int] = []

    def scale(start: int, factor: float) -> None:
        for piece in pieces[start:]:
            piece[1] *= factor

    for m in _ATTENTION.finditer(text):
        token, weight = m.group(0), m.group(1)
        if token.startswith("\\"):
            pieces.append([token[1:], 1.0])
        elif token == "(":
            round_open.append(len(pieces))
        elif token == "[":
            square_open.append(len(pieces))
        elif weight is not None and round_open:
            scale(round_open.pop(), float(weight))
        elif token == ")" and round_open:
            scale(round_open.pop(), 1.1)
        elif token == "]" and square_open:
            scale(square_open.pop(), 1 / 1.1)
        else:
            pieces.append([token, 1.0])
    for start in round_open:
        scale(start, 1.1)
    for start in square_open:
        scale(start, 1 / 1.1)
    if not pieces:
        return [("", 1.0)]
    merged: list[list[Any]] = [pieces[0]]
    for piece in pieces[1:]:
        if piece[1] == merged[-1][1]:
            merged[-1][0] += piece[0]
        else:
            merged.append(piece)
    return [(t, w) for t, w in merged]


def chunk_token_ids(ids: Sequence[int], *, eos_id: int, pad_id: int, model_max_length: int = 77) -> list[list[int]]:
    """Cut a padded id sequence of length ``max_token_length + 2`` (152 or 227) into 77-id chunks.

    Chunk k is ``[ids[0]] + ids[1+75k : 76+75k] + [ids[-1]]`` (BOS, 75 ids, the last id of the whole
    sequence). When ``pad_id != eos_id`` (SD2, SDXL tokenizer 2) each chunk is fixed: a chunk whose
    second-to-last id is neither EOS nor PAD ends with EOS, and ``BOS PAD ...`` becomes ``BOS EOS PAD ...``.
    A sequence of ``model_max_length`` ids or fewer is returned as one chunk.
    """
    ids = list(ids)
    if len(ids) <= model_max_length:
        return [ids]
    inner = model_max_length - 2
    chunks = []
    for start in range(1, len(ids) - model_max_length + 2, inner):
        chunk = [ids[0]] + ids[start:start + inner] + [ids[-1]]
        if pad_id != eos_id:
            if chunk[-2] != eos_id and chunk[-2] != pad_id:
                chunk[-1] = eos_id
            if chunk[1] == pad_id:
                chunk[1] = eos_id
        chunks.append(chunk)
    return chunks
