"""LC108 network-args-malformed: A network_args item is not key=value."""

from __future__ import annotations

from collections.abc import Iterable

from lora_compat.config.model import CanonicalConfig
from lora_compat.lint.finding import Finding
from lora_compat.lint.registry import Rule, register
from lora_compat.semantics.args import NOT_KEY_VALUE, network_arg_problems


@register
class NetworkArgsMalformed(Rule):
    """Every ``network_args`` item must be ``key=value``.

    sd-scripts splits each item on the first ``=`` and hands the value to the network module as a *string* . An item
    without ``=`` stops training with a ``ValueError``.

    **Anti-pattern**

    ```toml
    network_args = ["conv_dim 8"]
    ```

    **Best practice**

    ```toml
    network_args = ["conv_dim=8", "conv_alpha=4"]
    ```
    """

    code, name, severity = "LC108", "schema.network_args_malformed", "error"
    groups = ("schema",)
    summary = "A network_args item is not key=value."
    message = "network_args item {item!r} is not key=value"
    reference = "sd-scripts train_network.py setup_parser, networks/lora.py create_network"

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        for problem in network_arg_problems(cfg.get("network_args")):
            if problem.reason == NOT_KEY_VALUE and problem.item.strip():
                yield self.finding(cfg, option="network_args", item=problem.item.strip())
