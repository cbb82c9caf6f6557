"""LC244 validation-split-out-of-range: validation_split outside [0, 1]: no validation set."""

from __future__ import annotations

from collections.abc import Iterable

from lora_compat.config.model import CanonicalConfig
from lora_compat.lint.finding import Finding
from lora_compat.lint.query import as_number, dataset_scopes
from lora_compat.lint.registry import Rule, register


@register
class ValidationSplitOutOfRange(Rule):
    """``validation_split`` outside [0, 1] is skipped with a warning.

    A validation dataset is built only for ``0 < validation_split <= 1``.

    **Anti-pattern**

    ```toml
    validation_split = 10     # meant 10 %
    ```

    **Best practice**

    ```toml
    validation_split = 0.1
    ```
    """

    code, name, severity = "LC244", "data.validation_split_out_of_range", "warning"
    groups = ("data",)
    summary = "validation_split outside [0, 1]: no validation set."
    message = "validation_split = {v:g}{where} is outside [0, 1]: no validation set is built"
    reference = "sd-scripts train_network.py NetworkTrainer.train"

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        for sc in dataset_scopes(cfg):
            v = as_number(sc.value(cfg, "validation_split"))
            if v is not None and not 0 <= v <= 1:
                yield self.finding(cfg, origin=sc.origin(cfg, "validation_split"), option="validation_split",
                                   v=v, where=sc.where)
