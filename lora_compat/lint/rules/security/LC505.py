"""LC505 dataset-class-imports-code: dataset_class: sd-scripts would import that class."""

from __future__ import annotations

from collections.abc import Iterable

from lora_compat.config.model import CanonicalConfig
from lora_compat.lint.finding import Finding
from lora_compat.lint.registry import Rule, register


@register
class DatasetClassImportsCode(Rule):
    """``dataset_class`` makes sd-scripts import an arbitrary ``package.module.Class``.

    It bypasses the dataset config entirely. lora-compat refuses to import code named in a config; describe the data
    with a dataset config instead.

    **Anti-pattern**

    ```toml
    dataset_class = "mydata.loader.MyDataset"
    ```

    **Best practice**

    ```toml
    dataset_config = "dataset.toml"
    ```
    """

    code, name, severity = "LC505", "security.dataset_class_imports_code", "error"
    groups = ("security",)
    summary = "dataset_class: sd-scripts would import that class."
    message = "dataset_class {value!r} would make sd-scripts import code; lora-compat refuses"
    reference = "sd-scripts library/train_util.py add_dataset_arguments"

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        v = cfg.get("dataset_class")
        if isinstance(v, str) and v:
            yield self.finding(cfg, option="dataset_class", value=v)
