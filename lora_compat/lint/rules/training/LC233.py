"""LC233 zero-lr-removes-group: unet_lr/text_encoder_lr = 0 removes that group; its modules are saved untrained."""

from __future__ import annotations

from collections.abc import Iterable

from lora_compat.config.model import CanonicalConfig
from lora_compat.lint.finding import Finding
from lora_compat.lint.query import as_number, first_text_encoder_lr, truthy
from lora_compat.lint.registry import Rule, register


@register
class ZeroLrRemovesGroup(Rule):
    """A learning rate of 0 does not "train at lr 0": it removes the group from the optimizer.

    Groups whose lr is 0 are left out; their modules are still created and saved with ``lora_up`` = 0, so they have no
    effect. To not train a part, use ``network_train_unet_only`` / ``network_train_text_encoder_only``, which also keeps
    those modules out of the file.

    **Anti-pattern**

    ```toml
    text_encoder_lr = 0
    ```

    **Best practice**

    ```toml
    network_train_unet_only = true
    ```
    """

    code, name, severity = "LC233", "training.zero_lr_removes_group", "info"
    groups = ("training",)
    summary = "unet_lr/text_encoder_lr = 0 removes that group; its modules are saved untrained."
    message = "{opt} = 0 removes the {part} group from the optimizer; its LoRA modules are saved untrained"
    reference = "sd-scripts train_network.py setup_parser, library/train_util.py get_optimizer"

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        if as_number(cfg.get("unet_lr")) == 0 and not truthy(cfg.get("network_train_text_encoder_only")):
            yield self.finding(cfg, option="unet_lr", opt="unet_lr", part="UNet")
        if ("text_encoder_lr" in cfg.options and first_text_encoder_lr(cfg.get("text_encoder_lr")) == 0
                and not truthy(cfg.get("network_train_unet_only"))):
            yield self.finding(cfg, option="text_encoder_lr", opt="text_encoder_lr", part="text-encoder")
