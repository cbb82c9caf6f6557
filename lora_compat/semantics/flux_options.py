"""The FLUX.1 options of sd-scripts' ``flux_train_network.py`` that change the training math.

Names and defaults are those of sd-scripts' parser (``flux_train_utils.add_flux_train_arguments``,
``train_util.add_dit_training_arguments`` and the loss options of ``train_util``), so an object built from a
canonical config reads exactly like sd-scripts' ``args``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any

TIMESTEP_SAMPLINGS = ("sigma", "uniform", "sigmoid", "shift", "flux_shift")
WEIGHTING_SCHEMES = ("sigma_sqrt", "logit_normal", "mode", "cosmap", "none", "uniform")
MODEL_PREDICTION_TYPES = ("raw", "additive", "sigma_scaled")
LOSS_TYPES = ("l1", "l2", "huber", "smooth_l1")
HUBER_SCHEDULES = ("constant", "exponential", "snr")
MODEL_TYPES = ("flux", "chroma")

#: T5-XXL token length when ``t5xxl_max_token_length`` is unset (flux_train_network.get_tokenize_strategy).
T5_MAX_LENGTH_DEV = 512
T5_MAX_LENGTH_SCHNELL = 256


@dataclass
class FluxOptions:
    """One run's FLUX noise / timestep / loss options, with sd-scripts' defaults."""

    timestep_sampling: str = "sigma"
    sigmoid_scale: float = 1.0
    discrete_flow_shift: float = 3.0
    weighting_scheme: str = "uniform"
    logit_mean: float = 0.0
    logit_std: float = 1.0
    mode_scale: float = 1.29
    model_prediction_type: str = "sigma_scaled"
    guidance_scale: float = 3.5
    loss_type: str = "l2"
    huber_schedule: str = "snr"
    huber_c: float = 0.1
    huber_scale: float = 1.0
    ip_noise_gamma: float | None = None
    ip_noise_gamma_random_strength: bool = False
    apply_t5_attn_mask: bool = False
    t5xxl_max_token_length: int | None = None
    model_type: str = "flux"

    @classmethod
    def from_options(cls, get: Callable[[str], Any]) -> FluxOptions:
        """Build from a getter ``get(name) -> value or None`` (e.g. ``CanonicalConfig.effective``): sd-scripts'
        defaults for what is unset. Unvalidated: call :meth:`validate`."""
        out = cls()
        for f in fields(cls):
            value = get(f.name)
            if value is not None:
                setattr(out, f.name, value)
        return out

    def validate(self) -> None:
        """Raise ``ValueError`` for a value sd-scripts' parser or training would reject.

        ``--loss_type huber|smooth_l1`` with the default ``--huber_schedule snr`` is rejected here because
        sd-scripts raises ``NotImplementedError("Huber schedule 'snr' is not supported with the current
        model.")`` at the first step: the flow-matching scheduler has no ``alphas_cumprod``.
        """
        for name, allowed in (("timestep_sampling", TIMESTEP_SAMPLINGS), ("weighting_scheme", WEIGHTING_SCHEMES),
                              ("model_prediction_type", MODEL_PREDICTION_TYPES), ("loss_type", LOSS_TYPES),
                              ("huber_schedule", HUBER_SCHEDULES), ("model_type", MODEL_TYPES)):
            value = getattr(self, name)
            if value not in allowed:
                raise ValueError(f"{name}: {value!r} is not one of {', '.join(allowed)}")
        if self.model_type == "chroma" and not self.apply_t5_attn_mask:
            raise ValueError("model_type chroma needs apply_t5_attn_mask (sd-scripts asserts it: Chroma is trained "
                             "with the T5 padding masked)")
        if self.loss_type in ("huber", "smooth_l1") and self.huber_schedule == "snr":
            raise ValueError(f"loss_type {self.loss_type} with huber_schedule snr: sd-scripts raises "
                             "\"Huber schedule 'snr' is not supported with the current model\" for FLUX (the "
                             "flow-matching scheduler has no SNR); set huber_schedule to constant or exponential")

    def t5_max_length(self, *, schnell: bool) -> int:
        """The T5-XXL token length: the option, else 256 for schnell and 512 for dev (and Chroma)."""
        if self.t5xxl_max_token_length is not None:
            return int(self.t5xxl_max_token_length)
        return T5_MAX_LENGTH_SCHNELL if schnell else T5_MAX_LENGTH_DEV
