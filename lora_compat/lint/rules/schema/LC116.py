"""LC116 network-arg-key-spaced: a network_args key with spaces around it, which no network module reads."""

from __future__ import annotations

from collections.abc import Iterable

from lora_compat.config.model import CanonicalConfig
from lora_compat.lint.finding import Finding
from lora_compat.lint.registry import Rule, register
from lora_compat.semantics.args import NOT_KEY_VALUE, network_arg_problems


@register
class NetworkArgKeySpaced(Rule):
    """A ``network_args`` item written ``key = value``: the key keeps its spaces and the setting is silently lost.

    sd-scripts splits each item with ``key, value = net_arg.split("=", 1)`` (train_network.py) and strips
    nothing, so ``"conv_dim = 4"`` reaches the network module as the key ``"conv_dim "``. The module reads
    ``kwargs.get("conv_dim")``, finds nothing, and trains without the 3x3 convolutions — no error, no warning.
    (The value's spaces do no harm to ``int()``/``float()``, but ``"algo= lokr"`` or ``"split_qkv= True"``
    compare as strings and are off too.)

    **Anti-pattern**

    ```toml
    network_args = ["conv_dim = 4", "conv_alpha = 1"]
    ```

    **Best practice**

    ```toml
    network_args = ["conv_dim=4", "conv_alpha=1"]
    ```
    """

    code, name, severity = "LC116", "schema.network_arg_key_spaced", "warning"
    groups = ("schema", "network")
    summary = "A network_args key has spaces around it; the network module never reads it."
    message = "network_args item {item!r}: {reason}"
    reference = "sd-scripts train_network.py (net_kwargs from network_args: split('=', 1), no strip)"

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        for problem in network_arg_problems(cfg.get("network_args")):
            if problem.reason != NOT_KEY_VALUE:
                yield self.finding(cfg, option="network_args", item=problem.item, reason=problem.reason)
