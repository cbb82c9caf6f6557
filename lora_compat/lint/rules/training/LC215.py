"""LC215 text-encoder-lr-ignored-unet-only: text_encoder_lr with network_train_unet_only: nothing uses it."""

from __future__ import annotations

from collections.abc import Iterable

from lora_compat.config.model import CanonicalConfig
from lora_compat.lint.finding import Finding
from lora_compat.lint.query import first_text_encoder_lr, truthy
from lora_compat.lint.registry import Rule, register


@register
class TextEncoderLrIgnoredUnetOnly(Rule):
    """``text_encoder_lr`` is ignored with ``network_train_unet_only``.

    With ``network_train_unet_only`` no text-encoder LoRA modules are created, so a text-encoder learning rate has
    nothing to train.

    **Anti-pattern**

    ```toml
    network_train_unet_only = true
    text_encoder_lr = 5e-5
    ```

    **Best practice**

    ```toml
    network_train_unet_only = true
    ```
    """

    code, name, severity = "LC215", "training.text_encoder_lr_ignored_unet_only", "warning"
    groups = ("training",)
    summary = "text_encoder_lr with network_train_unet_only: nothing uses it."
    message = "text_encoder_lr = {lr:g} is ignored: network_train_unet_only creates no text-encoder LoRA"
    reference = "sd-scripts train_network.py setup_parser"

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        lr = first_text_encoder_lr(cfg.get("text_encoder_lr"))
        if lr and truthy(cfg.get("network_train_unet_only")):
            yield self.finding(cfg, option="text_encoder_lr", lr=lr)
