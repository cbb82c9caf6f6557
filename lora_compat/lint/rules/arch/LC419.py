"""LC419 flux-model-prediction-type-default: model_prediction_type sigma_scaled (the default) where the docs say raw."""

from __future__ import annotations

from collections.abc import Iterable

from lora_compat.config.model import CanonicalConfig
from lora_compat.lint.facts import flux
from lora_compat.lint.finding import Finding
from lora_compat.lint.query import effective
from lora_compat.lint.registry import Rule, register


@register
class FluxModelPredictionTypeDefault(Rule):
    """FLUX trains with ``model_prediction_type = "sigma_scaled"`` unless told otherwise; sd-scripts' docs say ``raw``.

    ``flux_train_network.py`` turns the transformer's output into the prediction compared with the flow target
    (noise - latents). The default ``sigma_scaled`` multiplies it by -sigma, adds the noisy input and weights
    the loss by ``weighting_scheme`` (SD3-style); ``raw`` uses the output as is, which is what
    ``docs/flux_train_network.md`` recommends (with ``timestep_sampling`` ``shift`` or ``flux_shift``). Both
    train; the difference is the loss landscape, so this is a note, not a fault. The choice is recorded as
    ``ss_model_prediction_type``.

    **Anti-pattern**

    ```toml
    network_module = "networks.lora_flux"
    model_prediction_type = "sigma_scaled"
    ```

    **Best practice**

    ```toml
    network_module = "networks.lora_flux"
    model_prediction_type = "raw"
    timestep_sampling = "flux_shift"
    ```
    """

    code, name, severity = "LC419", "arch.flux_model_prediction_type_default", "info"
    groups = ("arch", "flux")
    summary = "FLUX model_prediction_type sigma_scaled (the default) where sd-scripts' docs recommend raw."
    message = ("model_prediction_type {value!r} ({how}): the prediction is scaled by -sigma and the loss weighted "
               "by weighting_scheme; sd-scripts' docs recommend {recommended!r}")
    reference = "sd-scripts flux_train_network.py get_noise_pred_and_target; docs/flux_train_network.md"

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        if not flux.is_flux(cfg):
            return
        rec = flux.recommended(cfg, "model_prediction_type")
        value = effective(cfg, "model_prediction_type")
        if rec is None or value != "sigma_scaled" or value == rec:
            return
        how = "set in the file" if cfg.is_set("model_prediction_type") else "sd-scripts' default, not set"
        yield self.finding(cfg, option="model_prediction_type",
                           origin=cfg.locate("model_prediction_type") or cfg.family_origin,
                           value=value, how=how, recommended=rec)
