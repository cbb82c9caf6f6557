"""LC245 sgdnesterov8bit-not-nesterov: SGDNesterov8bit ends up as plain SGD8bit (no Nesterov)."""

from __future__ import annotations

from collections.abc import Iterable

from lora_compat.config.model import CanonicalConfig
from lora_compat.lint.facts.optimizers import optimizer_name
from lora_compat.lint.finding import Finding
from lora_compat.lint.registry import Rule, register


@register
class SgdNesterov8bitNotNesterov(Rule):
    """``SGDNesterov8bit`` is plain 8-bit SGD with momentum 0.9 — not Nesterov.

    sd-scripts builds the optimizer with Nesterov, then rebuilds it without ``nesterov=True``.

    **Anti-pattern**

    ```toml
    optimizer_type = "SGDNesterov8bit"
    ```

    **Best practice**

    ```toml
    optimizer_type = "SGDNesterov"
    ```
    """

    code, name, severity = "LC245", "optimizers.sgdnesterov8bit_not_nesterov", "info"
    groups = ("optimizers",)
    summary = "SGDNesterov8bit ends up as plain SGD8bit (no Nesterov)."
    message = "optimizer_type 'SGDNesterov8bit' runs plain 8-bit SGD with momentum 0.9, without Nesterov"
    reference = "sd-scripts library/train_util.py get_optimizer"

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        if optimizer_name(cfg) == "sgdnesterov8bit":
            yield self.finding(cfg, option="optimizer_type")
