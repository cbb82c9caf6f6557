"""LC402 sdxl-fp16-vae: SDXL with fp16 mixed precision and neither no_half_vae nor a replacement VAE."""

from __future__ import annotations

from collections.abc import Iterable

from lora_compat.config.model import CanonicalConfig
from lora_compat.lint.finding import Finding
from lora_compat.lint.query import effective, truthy
from lora_compat.lint.registry import Rule, register


@register
class SdxlFp16Vae(Rule):
    """The SDXL VAE overflows in fp16: use ``no_half_vae`` (or a fixed fp16 VAE).

    With ``mixed_precision = "fp16"`` the frozen models, VAE included, are cast to fp16; the original SDXL VAE produces
    NaN/black latents in fp16. ``no_half_vae`` keeps the VAE in fp32 (sd-scripts ``docs/sdxl_train_network.md``).

    **Anti-pattern**

    ```toml
    # sdxl_train_network.py
    mixed_precision = "fp16"
    ```

    **Best practice**

    ```toml
    # sdxl_train_network.py
    mixed_precision = "fp16"
    no_half_vae = true
    ```
    """

    code, name, severity = "LC402", "arch.sdxl_fp16_vae", "warning"
    groups = ("arch", "precision", "sdxl")
    summary = "SDXL with fp16 mixed precision and neither no_half_vae nor a replacement VAE."
    message = "SDXL with mixed_precision 'fp16' and no no_half_vae: the SDXL VAE overflows in fp16 (NaN latents)"
    reference = "sd-scripts library/train_util.py add_sd_models_arguments, add_training_arguments"

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        if not cfg.is_sdxl or truthy(cfg.get("no_half_vae")) or cfg.get("vae"):
            return
        if (effective(cfg, "mixed_precision") or "no") == "fp16":
            yield self.finding(cfg, option="mixed_precision")
