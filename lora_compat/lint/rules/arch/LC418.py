"""LC418 flux-guidance-scale-default: guidance_scale 3.5 (the default) where the docs say 1.0 (Chroma: 0.0)."""

from __future__ import annotations

from collections.abc import Iterable

from lora_compat.config.model import CanonicalConfig
from lora_compat.lint.facts import flux
from lora_compat.lint.finding import Finding
from lora_compat.lint.query import as_number, effective
from lora_compat.lint.registry import Rule, register


@register
class FluxGuidanceScaleDefault(Rule):
    """FLUX.1 dev trains with ``guidance_scale`` 3.5 unless told otherwise; sd-scripts' docs say to specify 1.0.

    ``flux_train_network.py`` fills the guidance embedder's input with ``--guidance_scale`` on every step
    (``FluxNetworkTrainer.get_noise_pred_and_target``). Its default 3.5 reproduces dev's distilled guidance;
    ``docs/flux_train_network.md`` says to specify 1.0 for LoRA training ("to disable guidance scale"), and the
    kohya_ss GUI's own FLUX preset uses 1.0 while the GUI field defaults to 3.5. Chroma is not
    guidance-distilled and its docs require 0.0. FLUX.1 schnell has no guidance embedder: the value has no
    effect there and is not reported. The value is recorded as ``ss_guidance_scale``.

    **Anti-pattern**

    ```toml
    network_module = "networks.lora_flux"
    guidance_scale = 3.5
    ```

    **Best practice**

    ```toml
    network_module = "networks.lora_flux"
    guidance_scale = 1.0
    ```
    """

    code, name, severity = "LC418", "arch.flux_guidance_scale_default", "warning"
    groups = ("arch", "flux")
    summary = "FLUX guidance_scale 3.5 (the default) where sd-scripts' docs say 1.0 for FLUX.1 dev, 0.0 for Chroma."
    message = ("guidance_scale {value} ({how}): sd-scripts' docs say {recommended} for {label} LoRA training; "
               "the guidance embedder is fed {value} on every step")
    reference = "sd-scripts flux_train_network.py get_noise_pred_and_target; docs/flux_train_network.md"

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        if not flux.is_flux(cfg) or flux.is_schnell(cfg):
            return
        if not cfg.is_set("guidance_scale") and any(n.data.get("option") == "guidance_scale" for n in cfg.notes):
            return   # the front-end dropped the user's value (a 0): its own finding says sd-scripts uses 3.5
        rec = flux.recommended(cfg, "guidance_scale")
        value = as_number(effective(cfg, "guidance_scale"))
        if rec is None or value is None or value == rec:
            return
        default = as_number(effective_default(cfg))
        # FLUX.1: only the surprising default (3.5, unset or the GUI's field default); Chroma: anything but 0.0
        if cfg.family == "flux1" and value != default:
            return
        how = "set in the file" if cfg.is_set("guidance_scale") else "sd-scripts' default, not set"
        label = "Chroma" if cfg.family == "chroma" else "FLUX.1 dev"
        yield self.finding(cfg, option="guidance_scale", origin=cfg.locate("guidance_scale") or cfg.family_origin,
                           value=value, how=how, recommended=rec, label=label)


def effective_default(cfg: CanonicalConfig) -> object:
    """flux_train_network.py's default guidance_scale (3.5)."""
    from lora_compat.config.options import default

    return default("guidance_scale", cfg.family)
