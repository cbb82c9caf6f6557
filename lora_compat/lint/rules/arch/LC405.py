"""LC405 clip-skip-on-sd2: clip_skip with v2: SD2's text encoder already ends at the penultimate layer."""

from __future__ import annotations

from collections.abc import Iterable

from lora_compat.config.model import CanonicalConfig
from lora_compat.lint.finding import Finding
from lora_compat.lint.query import as_number
from lora_compat.lint.registry import Rule, register


@register
class ClipSkipOnSd2(Rule):
    """``clip_skip`` on SD2 counts from a 23-layer text encoder.

    sd-scripts builds the SD2 text encoder without the last OpenCLIP layer and only warns about ``clip_skip`` with
    ``v2``. SD2 models were trained on that penultimate layer already, so ``clip_skip = 2`` skips one layer more than
    people coming from SD1 expect.

    **Anti-pattern**

    ```toml
    v2 = true
    clip_skip = 2
    ```

    **Best practice**

    ```toml
    v2 = true
    ```
    """

    code, name, severity = "LC405", "arch.clip_skip_on_sd2", "warning"
    groups = ("arch",)
    summary = "clip_skip with v2: SD2's text encoder already ends at the penultimate layer."
    message = "clip_skip = {v} with v2: SD2's 23-layer text encoder already is the penultimate layer"
    reference = ("sd-scripts library/train_util.py add_sd_models_arguments, library/strategy_sd.py "
                 "SdTextEncodingStrategy.encode_tokens")

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        v = as_number(cfg.get("clip_skip"))
        if cfg.is_v2 and not cfg.is_sdxl and v is not None and v > 1:
            yield self.finding(cfg, option="clip_skip", v=int(v))
