"""LC247 persistent-workers-without-workers: persistent_data_loader_workers with 0 DataLoader workers: ValueError."""

from __future__ import annotations

from collections.abc import Iterable

from lora_compat.config.model import CanonicalConfig
from lora_compat.lint.finding import Finding
from lora_compat.lint.query import as_number, truthy
from lora_compat.lint.registry import Rule, register


@register
class PersistentWorkersWithoutWorkers(Rule):
    """``persistent_data_loader_workers`` needs at least one DataLoader worker.

    PyTorch's DataLoader raises ``ValueError`` ("persistent_workers option needs num_workers > 0") when persistent
    workers are requested with ``max_data_loader_n_workers = 0``. The kohya_ss GUI default for the worker count is 0.

    **Anti-pattern**

    ```toml
    persistent_data_loader_workers = true
    max_data_loader_n_workers = 0
    ```

    **Best practice**

    ```toml
    persistent_data_loader_workers = true
    max_data_loader_n_workers = 2
    ```
    """

    code, name, severity = "LC247", "data.persistent_workers_without_workers", "error"
    groups = ("data",)
    summary = "persistent_data_loader_workers with 0 DataLoader workers: ValueError."
    message = "persistent_data_loader_workers needs max_data_loader_n_workers > 0 (PyTorch raises ValueError)"
    reference = "sd-scripts library/train_util.py add_training_arguments; kohya_ss kohya_gui/lora_gui.py"

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        if truthy(cfg.get("persistent_data_loader_workers")):
            n = as_number(cfg.get("max_data_loader_n_workers"))
            if n is not None and n <= 0:
                yield self.finding(cfg, option="persistent_data_loader_workers")
