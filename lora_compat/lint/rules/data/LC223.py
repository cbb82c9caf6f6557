"""LC223 prior-loss-weight-without-reg: prior_loss_weight without regularization images has no effect."""

from __future__ import annotations

from collections.abc import Iterable

from lora_compat.config.model import CanonicalConfig
from lora_compat.lint.finding import Finding
from lora_compat.lint.query import as_number, has_reg_images
from lora_compat.lint.registry import Rule, register


@register
class PriorLossWeightWithoutReg(Rule):
    """``prior_loss_weight`` only weights regularization images; without any it has no effect.

    It is a per-sample loss weight for samples from ``is_reg`` subsets / the ``reg_data_dir`` folder — not a "prior
    distribution" term as a widely copied option table claimed.

    **Anti-pattern**

    ```toml
    prior_loss_weight = 0.5   # no regularization images
    ```

    **Best practice**

    ```toml
    reg_data_dir = "reg"
    prior_loss_weight = 0.5
    ```
    """

    code, name, severity = "LC223", "data.prior_loss_weight_without_reg", "info"
    groups = ("data",)
    summary = "prior_loss_weight without regularization images has no effect."
    message = "prior_loss_weight = {v:g} has no effect: the config has no regularization images"
    reference = "sd-scripts library/train_util.py add_training_arguments, train_network.py NetworkTrainer.process_batch"

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        v = as_number(cfg.get("prior_loss_weight"))
        if v is not None and v != 1 and not has_reg_images(cfg):
            yield self.finding(cfg, option="prior_loss_weight", v=v)
