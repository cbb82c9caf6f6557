"""LC115 dynamo-backend-tensort: sd-scripts' misspelled TensorRT backend, refused by accelerate."""

from __future__ import annotations

from collections.abc import Iterable

from lora_compat.config.model import CanonicalConfig
from lora_compat.lint.finding import Finding
from lora_compat.lint.query import truthy
from lora_compat.lint.registry import Rule, register


@register
class DynamoBackendTensort(Rule):
    """``dynamo_backend = "tensort"`` with ``torch_compile``: accelerate has no such backend.

    sd-scripts' ``--dynamo_backend`` choices (library/train_util.py ``add_training_arguments``) copy accelerate's
    list with one typo: ``tensort`` for ``tensorrt``. argparse accepts the typo, and with ``--torch_compile``
    sd-scripts passes it to ``Accelerator(dynamo_backend=...)`` (``prepare_accelerator``), where accelerate's
    ``DynamoBackend`` enum refuses it with ``ValueError`` before training starts. Without ``torch_compile`` the
    value is never used. To compile with TensorRT write ``dynamo_backend = "tensorrt"`` in a ``--config_file``
    TOML (no argparse choices there; accelerate accepts it) — on the command line argparse refuses
    ``tensorrt``, so there only the other backends can be chosen.

    **Anti-pattern**

    ```toml
    torch_compile = true
    dynamo_backend = "tensort"
    ```

    **Best practice**

    ```toml
    torch_compile = true
    dynamo_backend = "tensorrt"
    ```
    """

    code, name, severity = "LC115", "schema.dynamo_backend_tensort", "error"
    groups = ("schema",)
    summary = "dynamo_backend 'tensort' (sd-scripts' misspelled choice) with torch_compile: accelerate refuses it."
    message = ("dynamo_backend {value!r} with torch_compile: accelerate has no such backend (ValueError at start); "
               "{how}")
    reference = "sd-scripts library/train_util.py add_training_arguments, prepare_accelerator"

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        v = cfg.get("dynamo_backend")
        if not isinstance(v, str) or v.lower() != "tensort" or not truthy(cfg.get("torch_compile")):
            return
        how = ("a command line cannot select TensorRT (argparse refuses 'tensorrt'): choose another backend"
               if cfg.dialect == "command-line" else "write 'tensorrt'")
        yield self.finding(cfg, option="dynamo_backend", value=v, how=how)
