"""LC508 tracker-logs-config: log_config with wandb: training arguments are uploaded to the tracker."""

from __future__ import annotations

from collections.abc import Iterable

from lora_compat.config.model import CanonicalConfig
from lora_compat.lint.finding import Finding
from lora_compat.lint.query import truthy
from lora_compat.lint.registry import Rule, register


@register
class TrackerLogsConfig(Rule):
    """``log_config`` uploads your training arguments to the tracker.

    With ``log_with = "wandb"`` (or ``all``) and ``log_config``, sd-scripts logs a filtered copy of the arguments to the
    tracker  — paths, prompts and comments become visible to whoever can see the run. Review what the config contains
    before sharing runs publicly.

    **Anti-pattern**

    ```toml
    log_with = "wandb"
    log_config = true
    ```

    **Best practice**

    ```toml
    log_with = "wandb"
    log_config = false
    ```
    """

    code, name, severity = "LC508", "security.tracker_logs_config", "info"
    groups = ("security",)
    summary = "log_config with wandb: training arguments are uploaded to the tracker."
    message = "log_config with log_with {v!r} uploads the training arguments (paths, prompts) to the tracker"
    reference = "sd-scripts library/train_util.py add_training_arguments"

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        v = cfg.get("log_with")
        if truthy(cfg.get("log_config")) and v in ("wandb", "all"):
            yield self.finding(cfg, option="log_config", v=v)
