"""LC107 args-not-python-literals: optimizer_args/lr_scheduler_args items that sd-scripts cannot parse."""

from __future__ import annotations

import ast
from collections.abc import Iterable

from lora_compat.config.model import CanonicalConfig
from lora_compat.lint.finding import Finding
from lora_compat.lint.registry import Rule, register


@register
class ArgsNotPythonLiterals(Rule):
    """``optimizer_args`` / ``lr_scheduler_args`` items must be ``key=value`` with a Python literal value.

    sd-scripts splits each item on *every* ``=`` and parses the value with ``ast.literal_eval``
    (sd-scripts-reference.md §1.5, §1.13 E19): strings must be quoted, ``betas=0.9,0.999`` becomes a tuple, and
    an item without ``=`` or with a second ``=`` raises before training starts. (lora-compat checks this with
    ``ast.literal_eval`` too, which evaluates literals only and never runs code.)

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
    reference = "sd-scripts-reference.md §1.5, §1.13 E19"

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        for option in ("optimizer_args", "lr_scheduler_args"):
            v = cfg.get(option)
            if isinstance(v, dict):      # Derrian objects/tables: values are strings written verbatim
                items = [f"{k}={val}" for k, val in v.items()]
            elif isinstance(v, str):
                items = v.split()
            elif isinstance(v, (list, tuple)):
                items = [str(x) for x in v]
            else:
                continue
            for item in items:
                if "=" not in item:
                    reason = "not key=value"
                elif item.count("=") > 1:
                    reason = "more than one '=' (sd-scripts splits on every '=')"
                else:
                    value = item.split("=", 1)[1]
                    try:
                        ast.literal_eval(value)
                        continue
                    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
                        reason = "the value is not a Python literal (quote strings: key='text')"
                yield self.finding(cfg, option=option, item=item, reason=reason)
