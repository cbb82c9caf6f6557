"""LC415 chroma-without-t5-attn-mask: Chroma without apply_t5_attn_mask: flux_train_network.py asserts."""

from __future__ import annotations

from collections.abc import Iterable

from lora_compat.config.model import CanonicalConfig
from lora_compat.lint.facts import flux
from lora_compat.lint.finding import Finding
from lora_compat.lint.registry import Rule, register


@register
class ChromaWithoutT5AttnMask(Rule):
    """Chroma (``model_type = "chroma"``) without ``apply_t5_attn_mask``: sd-scripts refuses to start.

    Chroma was trained with the T5 padding masked, so ``flux_train_network.py`` asserts ``apply_t5_attn_mask``
    for it (``AssertionError: apply_t5_attn_mask must be True for Chroma``). The kohya_ss GUI switches it on by
    itself for Chroma; a TOML, a command line or a Derrian file must say it.

    **Anti-pattern**

    ```toml
    network_module = "networks.lora_flux"
    model_type = "chroma"
    ```

    **Best practice**

    ```toml
    network_module = "networks.lora_flux"
    model_type = "chroma"
    apply_t5_attn_mask = true
    guidance_scale = 0.0
    ```
    """

    code, name, severity = "LC415", "arch.chroma_without_t5_attn_mask", "error"
    groups = ("arch", "flux")
    summary = "Chroma without apply_t5_attn_mask: flux_train_network.py asserts it (AssertionError at start)."
    message = "model_type chroma without apply_t5_attn_mask: sd-scripts raises {error}"
    reference = "sd-scripts flux_train_network.py FluxNetworkTrainer.assert_extra_args"

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        if cfg.family != "chroma":
            return
        if flux.network_error(cfg, cache_text_encoder_outputs=False, apply_t5_attn_mask=True) is not None:
            return
        err = flux.network_error(cfg, cache_text_encoder_outputs=False)
        if err is not None:
            origin = cfg.locate("apply_t5_attn_mask") or cfg.locate("model_type") or cfg.family_origin
            yield self.finding(cfg, origin=origin, error=err.sd_scripts_error)
