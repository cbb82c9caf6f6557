"""LC603 warmup-ratio-before-september-2024."""

from __future__ import annotations

from collections.abc import Iterable

from lora_compat.config.model import CanonicalConfig
from lora_compat.lint.finding import Finding
from lora_compat.lint.registry import Rule, register


@register
class WarmupRatioBeforeSeptember2024(Rule):
    """A float ``lr_warmup_steps`` below 1 only means "ratio" in sd-scripts since 2024-09-11.

    Before fd68703f (2024-09-11) ``lr_warmup_steps`` was ``type=int``; a float from a TOML went to transformers as a
    fractional step count — in effect almost no warmup. An old sd-scripts checkout runs this config differently from a
    current one.

    **Anti-pattern**

    ```toml
    lr_scheduler = "cosine"
    lr_warmup_steps = 0.05    # on sd-scripts before 2024-09-11
    ```

    **Best practice**

    ```toml
    lr_scheduler = "cosine"
    lr_warmup_steps = 50      # steps: same meaning on every version
    ```
    """

    code, name, severity = "LC603", "schedulers.warmup_ratio_before_september_2024", "info"
    groups = ("schedulers", "frontend_quirks")
    summary = "lr_warmup_steps as a ratio (< 1) is only understood by sd-scripts >= 2024-09-11."
    message = ("lr_warmup_steps = {v!r} is a ratio only for sd-scripts >= 2024-09-11; older versions ran almost no "
               "warmup")
    reference = "sd-scripts library/train_util.py add_optimizer_arguments (int_or_float since commit fd68703f)"

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        if cfg.dialect not in ("sd-scripts-toml", "command-line"):
            return
        v = cfg.get("lr_warmup_steps")
        if isinstance(v, float) and 0 < v < 1:
            yield self.finding(cfg, option="lr_warmup_steps", v=v)
