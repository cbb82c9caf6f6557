"""LC315 text-only-trains-text-encoder: network_train_text_encoder_only / text_only: no UNet LoRA is trained."""

from __future__ import annotations

from collections.abc import Iterable

from lora_compat.config.model import CanonicalConfig
from lora_compat.lint.finding import Finding
from lora_compat.lint.query import truthy
from lora_compat.lint.registry import Rule, register


@register
class TextOnlyTrainsTextEncoder(Rule):
    """``network_train_text_encoder_only`` (Derrian ``text_only``) trains only the text-encoder LoRA.

    A widely copied option table says: "text_only — Determines if the model should be trained only on text or on both
    text and images". Wrong: training always uses images and captions; the flag discards the UNet LoRA modules so only
    the text encoder adapts. Such a LoRA changes style/subject very little.

    **Anti-pattern**

    ```json
    {"text_only": true}
    ```

    **Best practice**

    ```json
    {"text_only": false}
    ```
    """

    code, name, severity = "LC315", "misconceptions.text_only_trains_text_encoder", "warning"
    groups = ("misconceptions", "training")
    summary = "network_train_text_encoder_only / text_only: no UNet LoRA is trained."
    message = "{key} trains only the text-encoder LoRA: no UNet modules are created (images are still used)"
    reference = "sd-scripts train_network.py setup_parser"

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        if truthy(cfg.get("network_train_text_encoder_only")) and not truthy(cfg.get("network_train_unet_only")):
            o = cfg.locate("network_train_text_encoder_only")
            yield self.finding(cfg, option="network_train_text_encoder_only",
                               key=o.key if o else "network_train_text_encoder_only")
