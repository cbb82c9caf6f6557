"""Moved: FLUX.1's training options live in :mod:`lora_compat.semantics.flux_options` (plan reads them without the
trainer). This name stays importable for code written against it."""

from lora_compat.semantics.flux_options import (
    HUBER_SCHEDULES,
    LOSS_TYPES,
    MODEL_PREDICTION_TYPES,
    MODEL_TYPES,
    T5_MAX_LENGTH_DEV,
    T5_MAX_LENGTH_SCHNELL,
    TIMESTEP_SAMPLINGS,
    WEIGHTING_SCHEMES,
    FluxOptions,
)

__all__ = ["HUBER_SCHEDULES", "LOSS_TYPES", "MODEL_PREDICTION_TYPES", "MODEL_TYPES", "T5_MAX_LENGTH_DEV",
           "T5_MAX_LENGTH_SCHNELL", "TIMESTEP_SAMPLINGS", "WEIGHTING_SCHEMES", "FluxOptions"]
