"""LC202 alpha-default-one: network_alpha is 1 (sd-scripts' default) with a large network_dim: scale 1/dim."""

from __future__ import annotations

from collections.abc import Iterable

from lora_compat.config.model import CanonicalConfig
from lora_compat.lint.facts.network import network_module_name, network_rank
from lora_compat.lint.finding import Finding
from lora_compat.lint.query import as_number, effective, truthy
from lora_compat.lint.registry import Rule, register


@register
class AlphaDefaultOne(Rule):
    """``network_alpha`` is 1 with a large ``network_dim``: the LoRA is scaled down by ``1/dim``.

    sd-scripts' default alpha is the int 1, not ``dim``. With dim 64 every update is multiplied by 1/64, so the LoRA
    learns about 64× slower than a PEFT/diffusers run where people usually set ``lora_alpha = r``. This is the most
    common reason for "my LoRA barely changes anything". When the alpha is only sd-scripts' default the finding is a
    warning; when the file sets 1 explicitly it is informational (some recipes do that on purpose and raise the learning
    rate).

    Seen in the wild: kohya-ss/sd-scripts#146 (LoRAs "barely different" after alpha got its default 1),
    bmaltais/kohya_ss#1919.

    **Anti-pattern**

    ```toml
    network_dim = 64
    # network_alpha left out -> 1
    ```

    **Best practice**

    ```toml
    network_dim = 64
    network_alpha = 32
    ```
    """

    code, name, severity = "LC202", "network.alpha_default_one", "warning"
    groups = ("network",)
    summary = "network_alpha is 1 (sd-scripts' default) with a large network_dim: scale 1/dim."
    message = "network_alpha is {how} with network_dim {dim:g}: every LoRA update is scaled by 1/{dim:g} = {scale:.4g}"
    reference = "sd-scripts train_network.py setup_parser, networks/lora.py LoRANetwork.save_weights"

    MIN_DIM = 16

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        if truthy(cfg.get("dim_from_weights")) or network_module_name(cfg) == "networks.oft":
            return
        dim = network_rank(cfg)
        if not dim or dim < self.MIN_DIM:
            return
        if "network_alpha" in cfg.options:
            if as_number(cfg.get("network_alpha")) == 1:
                yield self.finding(cfg, option="network_alpha", severity="info", how="1", dim=dim, scale=1 / dim)
        elif effective(cfg, "network_alpha") == 1:
            yield self.finding(cfg, option="network_dim", how="not set (sd-scripts' default 1)", dim=dim,
                               scale=1 / dim)
