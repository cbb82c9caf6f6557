"""LC301 alpha-looks-like-learning-rate: network_alpha is tiny, like a learning rate (alpha is a scale: alpha/dim)."""

from __future__ import annotations

from collections.abc import Iterable

from lora_compat.config.model import CanonicalConfig
from lora_compat.lint.finding import Finding
from lora_compat.lint.query import as_number, raw_as_written
from lora_compat.lint.registry import Rule, register


@register
class AlphaLooksLikeLearningRate(Rule):
    """``network_alpha`` is a scale, not a learning rate.

    A widely copied option table says: "alpha — This setting determines the learning rate used during training." Wrong:
    the LoRA output is multiplied by ``alpha / dim``. An alpha shaped like a learning rate (``0.0001``) scales every
    update by ``0.0001 / dim`` — the LoRA learns nothing visible.

    **Anti-pattern**

    ```json
    {"net_dim": 32, "alpha": 0.0001}
    ```

    **Best practice**

    ```json
    {"net_dim": 32, "alpha": 16, "learning_rate": 0.0001}
    ```
    """

    code, name, severity = "LC301", "misconceptions.alpha_looks_like_learning_rate", "error"
    groups = ("misconceptions", "network")
    summary = "network_alpha is tiny, like a learning rate (alpha is a scale: alpha/dim)."
    message = "network_alpha = {v:g} looks like a learning rate: alpha scales every update by alpha/dim = {scale:.2g}"
    reference = "sd-scripts networks/lora.py LoRAModule.__init__"

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        v = as_number(cfg.get("network_alpha"))
        dim = as_number(cfg.get("network_dim")) or 4
        if v is not None and 0 < v < 0.01:
            raw = raw_as_written(cfg, "network_alpha", "alpha")
            yield self.finding(cfg, origin=raw.origin if raw else None, option="network_alpha", v=v, scale=v / dim)
