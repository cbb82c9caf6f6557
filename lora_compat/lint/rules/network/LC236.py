"""LC236 dataset-network-multiplier-no-effect: Dataset-level network_multiplier has no effect (since 2025-01)."""

from __future__ import annotations

from collections.abc import Iterable

from lora_compat.config.model import CanonicalConfig
from lora_compat.lint.finding import Finding
from lora_compat.lint.query import as_number, dataset_scopes
from lora_compat.lint.registry import Rule, register


@register
class DatasetNetworkMultiplierNoEffect(Rule):
    """The dataset-level ``network_multiplier`` has no effect in current sd-scripts.

    The value still reaches each batch but train_network.py no longer reads it since 2025-01-06 (bbf6bbd5); the network
    multiplier stays 1.0.

    **Anti-pattern**

    ```toml
    [[datasets]]
    network_multiplier = 0.5
    ```

    **Best practice**

    ```toml
    [[datasets]]
    # no network_multiplier
    ```
    """

    code, name, severity = "LC236", "network.dataset_network_multiplier_no_effect", "warning"
    groups = ("network",)
    summary = "Dataset-level network_multiplier has no effect (since 2025-01)."
    message = "network_multiplier{where} has no effect in current sd-scripts"
    reference = "sd-scripts library/config_util.py BlueprintGenerator, train_network.py NetworkTrainer.train"

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        for sc in dataset_scopes(cfg):
            if sc.ds is None:
                continue
            v = sc.value(cfg, "network_multiplier")
            if v is not None and as_number(v) != 1:
                yield self.finding(cfg, origin=sc.origin(cfg, "network_multiplier"), option="network_multiplier",
                                   where=sc.where)
