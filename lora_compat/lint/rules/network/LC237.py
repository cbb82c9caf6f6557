"""LC237 dim-from-weights-ignores-dim: dim_from_weights ignores network_dim/network_alpha/network_dropout."""

from __future__ import annotations

from collections.abc import Iterable

from lora_compat.config.model import CanonicalConfig
from lora_compat.lint.finding import Finding
from lora_compat.lint.query import is_explicit, truthy
from lora_compat.lint.registry import Rule, register


@register
class DimFromWeightsIgnoresDim(Rule):
    """``dim_from_weights`` takes dims and alphas from ``network_weights`` and ignores the configured ones.

    It also ignores ``network_dropout`` and the rank/module dropouts.

    **Anti-pattern**

    ```toml
    dim_from_weights = true
    network_dim = 64
    ```

    **Best practice**

    ```toml
    dim_from_weights = true
    network_weights = "base_lora.safetensors"
    ```
    """

    code, name, severity = "LC237", "network.dim_from_weights_ignores_dim", "info"
    groups = ("network",)
    summary = "dim_from_weights ignores network_dim/network_alpha/network_dropout."
    message = "{opt} is ignored: dim_from_weights takes dims and alphas from network_weights"
    reference = "sd-scripts train_network.py setup_parser, NetworkTrainer.train"

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        if not truthy(cfg.get("dim_from_weights")):
            return
        for opt in ("network_dim", "network_alpha", "network_dropout"):
            if is_explicit(cfg, opt) and cfg.get(opt) is not None:
                yield self.finding(cfg, option=opt, opt=opt)
