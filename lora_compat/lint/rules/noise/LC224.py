"""LC224 adaptive-noise-without-offset: adaptive_noise_scale without noise_offset: ValueError (or no effect with 0)."""

from __future__ import annotations

from collections.abc import Iterable

from lora_compat.config.model import CanonicalConfig
from lora_compat.lint.finding import Finding
from lora_compat.lint.query import as_number
from lora_compat.lint.registry import Rule, register


@register
class AdaptiveNoiseWithoutOffset(Rule):
    """``adaptive_noise_scale`` needs ``noise_offset``.

    sd-scripts raises ``ValueError`` when ``adaptive_noise_scale`` is set and ``noise_offset`` is None; with
    ``noise_offset = 0`` the check passes but the adaptive part has no effect.

    **Anti-pattern**

    ```toml
    adaptive_noise_scale = 0.01
    ```

    **Best practice**

    ```toml
    noise_offset = 0.05
    adaptive_noise_scale = 0.01
    ```
    """

    code, name, severity = "LC224", "noise.adaptive_noise_without_offset", "error"
    groups = ("noise",)
    summary = "adaptive_noise_scale without noise_offset: ValueError (or no effect with 0)."
    message = "adaptive_noise_scale = {v:g} needs noise_offset: {what}"
    reference = "sd-scripts library/train_util.py add_training_arguments, verify_training_args"

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        v = as_number(cfg.get("adaptive_noise_scale"))
        if v is None or v == 0:
            return
        off = cfg.get("noise_offset")
        if off is None:
            yield self.finding(cfg, option="adaptive_noise_scale", v=v, what="sd-scripts raises ValueError")
        elif not as_number(off):
            yield self.finding(cfg, option="adaptive_noise_scale", v=v, severity="warning",
                               what="noise_offset is 0, so the adaptive scale has no effect")
