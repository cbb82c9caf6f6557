"""FLUX.1 sample images as sd-scripts makes them (``library/flux_train_utils.py``): pure functions, stdlib only.

* :func:`lin_function` — ``get_lin_function``: the line through ``(256, 0.5)`` and ``(4096, 1.15)`` that maps an
  image token count to ``mu`` (shared by sampling and ``--timestep_sampling flux_shift``).
* :func:`flux_sample_schedule` — ``get_schedule``: ``num_steps + 1`` flow-matching times from 1 to 0, shifted by
  ``mu`` of the packed image sequence length (``time_shift(mu, 1, t)``), with torch's float32 arithmetic emulated
  so the values are the ones sd-scripts' loop steps through.
* :func:`flux_sample_settings` — what ``sample_image_inference`` makes of one prompt: the defaults (512 x 512,
  20 steps, embedded guidance 3.5, CFG scale 1.0), sizes rounded down to a multiple of 16 (at least 64), the
  negative prompt only when the CFG scale is not 1, the token count and ``mu``; and the prompt options FLUX does
  not read (``--ss`` sampler names, ``--fs``, ``--ctr``, ``--rcfg``; ``--cn`` without a ControlNet).

``lora-compat plan`` shows these settings and the training engine's FLUX sampler runs them: one function each.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from lora_compat.semantics.loss_weights import _f32, _linspace32

#: ``sample_image_inference``'s defaults for a prompt that does not give the value.
FLUX_SAMPLE_DEFAULTS: dict[str, float | int] = {"width": 512, "height": 512, "sample_steps": 20,
                                                "guidance_scale": 3.5, "scale": 1.0}
#: ``get_schedule``'s shift line: ``mu`` = ``base_shift`` at 256 image tokens, ``max_shift`` at 4096.
BASE_SHIFT, MAX_SHIFT = 0.5, 1.15


def lin_function(x1: float = 256, y1: float = 0.5, x2: float = 4096, y2: float = 1.15) -> Callable[[float], float]:
    """The line through ``(x1, y1)`` and ``(x2, y2)`` (sd-scripts ``get_lin_function``), as a callable."""
    m = (y2 - y1) / (x2 - x1)
    b = y1 - m * x1
    return lambda x: m * x + b


def flux_sample_mu(image_seq_len: int, base_shift: float = BASE_SHIFT, max_shift: float = MAX_SHIFT) -> float:
    """``mu`` of the sampling schedule for ``image_seq_len`` packed image tokens (not clamped, as sd-scripts)."""
    return lin_function(y1=base_shift, y2=max_shift)(image_seq_len)


def flux_sample_schedule(num_steps: int, image_seq_len: int, *, base_shift: float = BASE_SHIFT,
                         max_shift: float = MAX_SHIFT, shift: bool = True) -> list[float]:
    """sd-scripts' ``get_schedule``: ``torch.linspace(1, 0, num_steps + 1)`` in float32, then (``shift``)
    ``exp(mu) / (exp(mu) + (1/t - 1) ** 1)`` with ``mu`` = :func:`flux_sample_mu` of ``image_seq_len``, each
    torch float32 operation emulated (``1 / t`` and ``c / x`` are a float32 reciprocal times ``c`` in torch).

    The first value is 1 (up to one float32 rounding) and the last is 0; the Euler loop steps from each value to
    the next.
    """
    if num_steps < 1:
        raise ValueError(f"num_steps must be at least 1, not {num_steps}")
    times = _linspace32(1.0, 0.0, num_steps + 1)
    if not shift:
        return times
    e_mu = _f32(math.exp(flux_sample_mu(image_seq_len, base_shift, max_shift)))
    out = []
    for t in times:
        inv = _f32(1.0 / t) if t != 0 else math.inf          # torch: reciprocal(t) * 1
        x = _f32(inv - 1.0)                                   # ** 1.0 is exact
        denom = _f32(e_mu + x)
        out.append(0.0 if denom == math.inf else _f32(_f32(1.0 / denom) * e_mu))
    return out


def flux_sample_size(value: int | None, default: int) -> int:
    """A sample image side as sd-scripts' FLUX sampler uses it: ``max(64, v - v % 16)``."""
    v = default if value is None else int(value)
    return max(64, v - v % 16)


@dataclass(frozen=True)
class FluxSampleSettings:
    """One FLUX sample image as ``sample_image_inference`` makes it (every default applied).

    ``negative_prompt`` is None when it is not used (CFG scale 1: sd-scripts ignores it); ``image_seq_len`` is the
    packed token count ``(height // 16) * (width // 16)`` and ``mu`` the schedule's shift for it.
    """

    prompt: str
    width: int
    height: int
    sample_steps: int
    guidance_scale: float
    cfg_scale: float
    negative_prompt: str | None
    seed: int | None
    image_seq_len: int
    mu: float

    @property
    def packed_height(self) -> int:
        """Rows of 2x2 latent patches (``height // 16``)."""
        return self.height // 16

    @property
    def packed_width(self) -> int:
        """Columns of 2x2 latent patches (``width // 16``)."""
        return self.width // 16

    def schedule(self) -> list[float]:
        """The shifted time schedule this image is denoised along (:func:`flux_sample_schedule`)."""
        return flux_sample_schedule(self.sample_steps, self.image_seq_len)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def flux_sample_settings(prompt: Any) -> FluxSampleSettings:
    """The settings of a :class:`~lora_compat.semantics.samples.SamplePrompt` for FLUX.1 (None values take
    :data:`FLUX_SAMPLE_DEFAULTS`; ``--g`` is the embedded guidance, ``--l`` the CFG scale)."""
    d = FLUX_SAMPLE_DEFAULTS
    width = flux_sample_size(prompt.width, int(d["width"]))
    height = flux_sample_size(prompt.height, int(d["height"]))
    steps = int(prompt.sample_steps if prompt.sample_steps is not None else d["sample_steps"])
    guidance = float(prompt.guidance_scale if prompt.guidance_scale is not None else d["guidance_scale"])
    cfg = float(prompt.scale if prompt.scale is not None else d["scale"])
    negative = (prompt.negative_prompt or "") if cfg != 1.0 else None
    seq = (height // 16) * (width // 16)
    return FluxSampleSettings(prompt=prompt.prompt, width=width, height=height, sample_steps=steps,
                              guidance_scale=guidance, cfg_scale=cfg, negative_prompt=negative, seed=prompt.seed,
                              image_seq_len=seq, mu=flux_sample_mu(seq))


def flux_ignored_prompt_options(prompt: Any) -> list[str]:
    """What a prompt asks for that sd-scripts' FLUX sampler does not do, one phrase each."""
    out = []
    if prompt.sample_sampler:
        out.append(f"--ss {prompt.sample_sampler}: FLUX samples with the flow-matching Euler steps whatever the "
                   "sampler name (sd-scripts reads no sampler for FLUX)")
    if prompt.flow_shift is not None:
        out.append(f"--fs {prompt.flow_shift}: FLUX's schedule shift comes from the image size (not read)")
    if prompt.cfg_trunc_ratio is not None or prompt.renorm_cfg is not None:
        out.append("--ctr / --rcfg are Lumina options (not read for FLUX)")
    if prompt.negative_prompt and (prompt.scale is None or float(prompt.scale) == 1.0):
        out.append("--n is ignored at CFG scale 1 (give --l above 1 to use the negative prompt, as sd-scripts)")
    return out
