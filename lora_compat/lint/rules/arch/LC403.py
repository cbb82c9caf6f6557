"""LC403 sdxl-with-v2: v2 together with SDXL: asserts."""

from __future__ import annotations

from collections.abc import Iterable

from lora_compat.config.model import CanonicalConfig
from lora_compat.lint.finding import Finding
from lora_compat.lint.query import truthy
from lora_compat.lint.registry import Rule, register


@register
class SdxlWithV2(Rule):
    """``v2`` cannot be set for SDXL.

    ``verify_sdxl_training_args`` asserts that ``v2`` is off.

    **Anti-pattern**

    ```json
    {"sdxl": true, "v2": true}
    ```

    **Best practice**

    ```json
    {"sdxl": true, "v2": false}
    ```
    """

    code, name, severity = "LC403", "arch.sdxl_with_v2", "error"
    groups = ("arch", "sdxl")
    summary = "v2 together with SDXL: asserts."
    message = "v2 cannot be combined with SDXL: sdxl_train_network.py stops with an AssertionError"
    reference = ("sd-scripts library/train_util.py add_sd_models_arguments, library/sdxl_train_util.py "
                 "verify_sdxl_training_args")

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        if cfg.is_sdxl and truthy(cfg.get("v2")):
            yield self.finding(cfg, option="v2")
