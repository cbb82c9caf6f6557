"""LC107 args-not-python-literals: optimizer_args/lr_scheduler_args items that sd-scripts cannot parse."""

from __future__ import annotations

from collections.abc import Iterable

from lora_compat.config.model import CanonicalConfig
from lora_compat.lint.finding import Finding
from lora_compat.lint.registry import Rule, register
from lora_compat.semantics.args import literal_args


@register
class ArgsNotPythonLiterals(Rule):
    """``optimizer_args`` / ``lr_scheduler_args`` items must be ``key=value`` with a Python literal value.

    sd-scripts splits each item on *every* ``=`` and parses the value with ``ast.literal_eval``: strings must be
    quoted, ``betas=0.9,0.999`` becomes a tuple, and an item without ``=`` or with a second ``=`` raises before training
    starts. (lora-compat checks this with ``ast.literal_eval`` too, which evaluates literals only and never runs code.)

    **Anti-pattern**

    ```toml
    optimizer_type = "Prodigy"
    optimizer_args = ["weight_decay", "d_coef=two", "betas=(0.9,0.99)=x"]
    ```

    **Best practice**

    ```toml
    optimizer_type = "Prodigy"
    optimizer_args = ["weight_decay=0.01", "d_coef=2", "betas=0.9,0.99"]
    ```
    """

    code, name, severity = "LC107", "schema.args_not_python_literals", "error"
    groups = ("schema",)
    summary = "optimizer_args/lr_scheduler_args items that sd-scripts cannot parse."
    message = "{option} item {item!r}: {reason}"
    reference = "sd-scripts library/train_util.py add_optimizer_arguments, get_optimizer"

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        for option in ("optimizer_args", "lr_scheduler_args"):
            # the items sd-scripts' `key, value = arg.split("="); ast.literal_eval(value)` stops on
            for problem in literal_args(cfg.get(option))[1]:
                yield self.finding(cfg, option=option, item=problem.item, reason=problem.reason)
