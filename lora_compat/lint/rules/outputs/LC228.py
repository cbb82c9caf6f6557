"""LC228 logging-dir-required: log_with tensorboard/all without logging_dir: ValueError."""

from __future__ import annotations

from collections.abc import Iterable

from lora_compat.config.model import CanonicalConfig
from lora_compat.lint.finding import Finding
from lora_compat.lint.registry import Rule, register


@register
class LoggingDirRequired(Rule):
    """``log_with = "tensorboard"`` or ``"all"`` needs ``logging_dir``.

    ``prepare_accelerator`` raises ``ValueError`` otherwise.

    **Anti-pattern**

    ```toml
    log_with = "tensorboard"
    ```

    **Best practice**

    ```toml
    log_with = "tensorboard"
    logging_dir = "logs"
    ```
    """

    code, name, severity = "LC228", "outputs.logging_dir_required", "error"
    groups = ("outputs",)
    summary = "log_with tensorboard/all without logging_dir: ValueError."
    message = "log_with = {v!r} requires logging_dir"
    reference = "sd-scripts library/train_util.py add_training_arguments, prepare_accelerator"

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        v = cfg.get("log_with")
        if v in ("tensorboard", "all") and not cfg.get("logging_dir"):
            yield self.finding(cfg, option="log_with", v=v)
