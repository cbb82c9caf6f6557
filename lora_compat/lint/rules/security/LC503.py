"""LC503 optimizer-type-imports-code: Dotted optimizer_type: sd-scripts would import that module."""

from __future__ import annotations

from collections.abc import Iterable

from lora_compat.config.model import CanonicalConfig
from lora_compat.lint.facts.code_imports import DERRIAN_PREFIX, is_dotted_path
from lora_compat.lint.finding import Finding
from lora_compat.lint.registry import Rule, register


@register
class OptimizerTypeImportsCode(Rule):
    """A dotted ``optimizer_type`` makes sd-scripts import a module.

    Names that are not built in go to ``torch.optim.<Name>`` or, when dotted, to an arbitrary ``module.Class``.
    lora-compat never imports from a config: map the optimizer to a built-in name (``AdamW``, ``AdamW8bit``, ``Lion``,
    ``Prodigy``, ``Adafactor`` …). Derrian's bundled ``LoraEasyCustomOptimizer.*`` classes do not exist in sd-scripts at
    all.

    **Anti-pattern**

    ```toml
    optimizer_type = "my_pkg.optim.Magic"
    ```

    **Best practice**

    ```toml
    optimizer_type = "AdamW8bit"
    ```
    """

    code, name, severity = "LC503", "security.optimizer_type_imports_code", "error"
    groups = ("security",)
    summary = "Dotted optimizer_type: sd-scripts would import that module."
    message = ("optimizer_type {value!r} is a dotted path that sd-scripts would import{extra}; use a built-in "
               "optimizer name")
    reference = "sd-scripts library/train_util.py add_optimizer_arguments, get_optimizer"
    note_codes = ("derrian-toml-custom-optimizer",)

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        v = cfg.get("optimizer_type")
        if is_dotted_path(v):
            extra = " (a Derrian class that vanilla sd-scripts lacks)" if v.startswith(DERRIAN_PREFIX) else ""
            yield self.finding(cfg, option="optimizer_type", value=v, extra=extra)
