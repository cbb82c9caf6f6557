"""LC203 warmup-percent-below-one."""

from __future__ import annotations

from collections.abc import Iterable

from lora_compat.config.model import CanonicalConfig
from lora_compat.lint.finding import Finding
from lora_compat.lint.query import as_number, raw_value
from lora_compat.lint.registry import Rule, register


@register
class WarmupPercentBelowOne(Rule):
    """kohya_ss GUI ``lr_warmup`` is a *percent* (0–100); a value below 1 looks like a ratio and is lost.

    The GUI field is "LR warmup (% of total steps)". A value such as ``0.05`` (meant as 5 %) is 0.05 % — and the GUI's
    loader coerces it with ``int()`` to 0, so warmup is disabled.

    Seen in the wild: derrian-distro/LoRA_Easy_Training_Scripts#272 (does warmup 0.05 mean 5 %?).

    **Anti-pattern**

    ```json
    {"lr_warmup": 0.05}
    ```

    **Best practice**

    ```json
    {"lr_warmup": 5, "lr_scheduler": "cosine"}
    ```
    """

    code, name, severity = "LC203", "schedulers.warmup_percent_below_one", "warning"
    groups = ("schedulers",)
    summary = "kohya_ss lr_warmup (a percent) is between 0 and 1: it looks like a ratio and becomes 0."
    message = "lr_warmup = {value!r} is a percent in the kohya_ss GUI: {value} % (int() makes it 0), not {pct:g} %"
    reference = "kohya_ss kohya_gui/common_gui.py; kohya_ss kohya_gui/lora_gui.py"

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        if cfg.dialect != "kohya-gui":
            return
        raw = raw_value(cfg, None, keys=("lr_warmup",))
        n = as_number(raw.value) if raw else None
        if raw is not None and n is not None and 0 < n < 1:
            yield self.finding(cfg, origin=raw.origin, option="lr_warmup_steps", value=raw.value, pct=n * 100)
