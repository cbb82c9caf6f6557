"""LC240 dylora-conv-dim-mismatch: networks.dylora with conv_dim != network_dim: asserts."""

from __future__ import annotations

from collections.abc import Iterable

from lora_compat.config.model import CanonicalConfig
from lora_compat.lint.facts.network import network_module_name, network_rank
from lora_compat.lint.finding import Finding
from lora_compat.lint.query import as_number, network_arg
from lora_compat.lint.registry import Rule, register


@register
class DyloraConvDimMismatch(Rule):
    """kohya DyLoRA requires ``conv_dim`` equal to ``network_dim``.

    ``networks.dylora`` asserts it when ``conv_dim`` is given.

    **Anti-pattern**

    ```toml
    network_module = "networks.dylora"
    network_dim = 16
    network_args = ["conv_dim=8", "unit=4"]
    ```

    **Best practice**

    ```toml
    network_module = "networks.dylora"
    network_dim = 16
    network_args = ["conv_dim=16", "unit=4"]
    ```
    """

    code, name, severity = "LC240", "network.dylora_conv_dim_mismatch", "error"
    groups = ("network",)
    summary = "networks.dylora with conv_dim != network_dim: asserts."
    message = "networks.dylora needs conv_dim ({conv:g}) == network_dim ({dim:g}): AssertionError"
    reference = "sd-scripts networks/lora.py create_network, networks/dylora.py create_network"

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        if network_module_name(cfg) != "networks.dylora":
            return
        conv = as_number(network_arg(cfg, "conv_dim"))
        dim = network_rank(cfg)
        if conv is not None and dim is not None and conv != dim:
            yield self.finding(cfg, option="network_args", conv=conv, dim=dim)
