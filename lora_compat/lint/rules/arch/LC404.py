"""LC404 v-parameterization-without-v2: v_parameterization on SD1.x/SDXL (ε-prediction bases)."""

from __future__ import annotations

from collections.abc import Iterable

from lora_compat.config.model import CanonicalConfig
from lora_compat.lint.finding import Finding
from lora_compat.lint.query import truthy
from lora_compat.lint.registry import Rule, register


@register
class VParameterizationWithoutV2(Rule):
    """``v_parameterization`` on an SD1.x (or SDXL) base that predicts noise.

    The flag switches the training target to v-prediction; sd-scripts does not check it against the model. SD1.x and
    the SDXL base are ε-prediction models; only SD2-768-v style (or v-prediction fine-tunes) want it. On an ε model the
    LoRA learns the wrong target.

    **Anti-pattern**

    ```toml
    v2 = false
    v_parameterization = true
    ```

    **Best practice**

    ```toml
    v2 = true                     # SD2.x 768-v
    v_parameterization = true
    ```
    """

    code, name, severity = "LC404", "arch.v_parameterization_without_v2", "warning"
    groups = ("arch", "noise")
    summary = "v_parameterization on SD1.x/SDXL (ε-prediction bases)."
    message = "v_parameterization on {arch}: the base model predicts noise unless it is a v-prediction fine-tune"
    reference = "sd-scripts library/train_util.py add_sd_models_arguments"

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        if truthy(cfg.get("v_parameterization")) and not cfg.is_v2:
            yield self.finding(cfg, option="v_parameterization", arch="SDXL" if cfg.is_sdxl else "SD1.x")
