"""LC101 invalid-value: A value cannot be converted to its option's type or range."""

from __future__ import annotations

from collections.abc import Iterable

from lora_compat.config.model import CanonicalConfig
from lora_compat.config.secrets import redact
from lora_compat.lint.finding import Finding
from lora_compat.lint.registry import Rule, register


def _short(v: object, limit: int = 60) -> str:
    s = repr(v)
    return s if len(s) <= limit else s[: limit - 3] + "..."


@register
class InvalidValue(Rule):
    """A value could not be converted to the type or range of its option.

    The reader keeps such values aside (``cfg.invalid``) instead of guessing. sd-scripts would either crash at start
    (argparse error, ``AssertionError``) or, worse, run with a value that means something else: a ``--config_file`` TOML
    is not type-checked at all.

    **Anti-pattern**

    ```json
    {"network_dim": "abc", "learning_rate": "1e-4x"}
    ```

    **Best practice**

    ```json
    {"network_dim": 32, "learning_rate": 0.0001}
    ```
    """

    code, name, severity = "LC101", "schema.invalid_value", "error"
    groups = ("schema",)
    summary = "A value cannot be converted to its option's type or range."
    message = "{value} cannot be used for {option}: {reason}"
    reference = "sd-scripts library/train_util.py read_config_from_file"

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        for inv in cfg.invalid:
            shown = redact(inv.origin.key, inv.value)
            yield self.finding(cfg, origin=inv.origin, value=_short(shown), option=inv.option, reason=inv.reason)
