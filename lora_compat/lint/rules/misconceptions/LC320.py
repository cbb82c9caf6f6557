"""LC320 learning-rate-default-tiny: No learning rate set: sd-scripts uses 2e-6 (not 1e-4)."""

from __future__ import annotations

from collections.abc import Iterable

from lora_compat.config.model import CanonicalConfig
from lora_compat.lint.finding import Finding
from lora_compat.lint.query import effective, truthy
from lora_compat.lint.registry import Rule, register


@register
class LearningRateDefaultTiny(Rule):
    """sd-scripts' default ``learning_rate`` is 2e-6, not 1e-4.

    A widely copied option table says: "learning_rate … The default value is 0.0001." sd-scripts' default is ``2e-6``
    and it is also the fallback for ``unet_lr`` and ``text_encoder_lr``. A ``--config_file`` without any learning rate
    trains ~50× slower than people expect.

    **Anti-pattern**

    ```toml
    network_dim = 32
    # no learning_rate, no unet_lr
    ```

    **Best practice**

    ```toml
    learning_rate = 1e-4
    ```
    """

    code, name, severity = "LC320", "misconceptions.learning_rate_default_tiny", "warning"
    groups = ("misconceptions", "training")
    summary = "No learning rate set: sd-scripts uses 2e-6 (not 1e-4)."
    message = "no learning_rate/unet_lr set: sd-scripts trains the UNet at its default {lr:g}, not 1e-4"
    reference = "sd-scripts library/train_util.py add_optimizer_arguments"

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        if cfg.dialect not in ("sd-scripts-toml", "command-line", "native"):
            return   # the legacy front-ends always passed their own default
        if cfg.get("learning_rate") is not None or cfg.get("unet_lr") is not None:
            return
        if truthy(cfg.get("network_train_text_encoder_only")):
            return
        lr = effective(cfg, "learning_rate")
        if lr is not None:
            yield self.finding(cfg, option="learning_rate", lr=lr)
