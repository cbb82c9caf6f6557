"""LC229 nothing-trained: No LoRA parameters left to train (both only-flags, or all learning rates 0)."""

from __future__ import annotations

from collections.abc import Iterable

from lora_compat.config.model import CanonicalConfig
from lora_compat.lint.finding import Finding
from lora_compat.lint.query import as_number, effective, first_text_encoder_lr, truthy
from lora_compat.lint.registry import Rule, register


@register
class NothingTrained(Rule):
    """The settings leave no LoRA parameter to train.

    ``network_train_unet_only`` together with ``network_train_text_encoder_only`` discards both the UNet and the
    text-encoder modules (not checked by sd-scripts); and a learning rate of 0 *removes* that group from the optimizer.
    If every group is gone nothing learns.

    **Anti-pattern**

    ```toml
    network_train_unet_only = true
    network_train_text_encoder_only = true
    ```

    **Best practice**

    ```toml
    network_train_unet_only = true
    ```
    """

    code, name, severity = "LC229", "training.nothing_trained", "error"
    groups = ("training",)
    summary = "No LoRA parameters left to train (both only-flags, or all learning rates 0)."
    message = "{why}: nothing is trained"
    reference = "sd-scripts train_network.py setup_parser, library/train_util.py get_optimizer"
    note_codes = ("derrian-a2-both-train-parts", "kohya-gui-all-lr-zero")

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        unet_only = truthy(cfg.get("network_train_unet_only"))
        te_only = truthy(cfg.get("network_train_text_encoder_only"))
        if unet_only and te_only:
            yield self.finding(cfg, option="network_train_text_encoder_only",
                               why="network_train_unet_only and network_train_text_encoder_only are both set")
            return
        lr = as_number(effective(cfg, "learning_rate"))
        unet = as_number(cfg.get("unet_lr"))
        te = first_text_encoder_lr(cfg.get("text_encoder_lr"))
        unet_eff = lr if unet is None else unet
        te_eff = lr if te is None else te
        dead_unet = te_only or unet_eff == 0
        dead_te = unet_only or te_eff == 0
        if dead_unet and dead_te and (unet == 0 or te == 0 or lr == 0):
            yield self.finding(cfg, option="unet_lr" if "unet_lr" in cfg.options else "learning_rate",
                               why="every learning rate that applies is 0 (a 0 lr removes the group)")
