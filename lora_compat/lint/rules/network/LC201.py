"""LC201 alpha-greater-than-dim: network_alpha > network_dim: LoRA updates are scaled up (scale = alpha/dim > 1)."""

from __future__ import annotations

from collections.abc import Iterable

from lora_compat.config.model import CanonicalConfig
from lora_compat.lint.facts.network import network_module_name, network_rank
from lora_compat.lint.finding import Finding
from lora_compat.lint.query import as_number, truthy
from lora_compat.lint.registry import Rule, register


@register
class AlphaGreaterThanDim(Rule):
    """``network_alpha`` larger than ``network_dim`` multiplies every LoRA update by more than 1.

    kohya's LoRA output is ``up(down(x)) · alpha / dim``. With alpha > dim the scale exceeds 1, which acts like a larger
    learning rate and makes training unstable; most recipes use alpha <= dim (alpha = dim gives scale 1, alpha = dim/2
    gives 0.5).

    **Anti-pattern**

    ```toml
    network_dim = 8
    network_alpha = 64    # scale 8.0
    ```

    **Best practice**

    ```toml
    network_dim = 32
    network_alpha = 16    # scale 0.5
    ```
    """

    code, name, severity = "LC201", "network.alpha_greater_than_dim", "warning"
    groups = ("network",)
    summary = "network_alpha > network_dim: LoRA updates are scaled up (scale = alpha/dim > 1)."
    message = "network_alpha {alpha:g} > network_dim {dim:g}: every LoRA update is multiplied by {scale:g}"
    reference = "sd-scripts networks/lora.py LoRAModule.__init__"

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        if truthy(cfg.get("dim_from_weights")) or network_module_name(cfg) == "networks.oft":
            return
        alpha = as_number(cfg.get("network_alpha"))
        dim = network_rank(cfg)
        if alpha is not None and dim and alpha > dim:
            yield self.finding(cfg, option="network_alpha", alpha=alpha, dim=dim, scale=alpha / dim)
