"""LC225 v-pred-loss-options-conflict."""

from __future__ import annotations

from collections.abc import Iterable

from lora_compat.config.model import CanonicalConfig
from lora_compat.lint.finding import Finding
from lora_compat.lint.query import as_number, truthy
from lora_compat.lint.registry import Rule, register


@register
class VPredLossOptionsConflict(Rule):
    """``scale_v_pred_loss_like_noise_pred`` needs ``v_parameterization``; ``v_pred_like_loss`` must not have it.

    Both are checked by ``verify_training_args`` and raise ``ValueError``.

    **Anti-pattern**

    ```toml
    scale_v_pred_loss_like_noise_pred = true   # no v_parameterization
    ```

    **Best practice**

    ```toml
    v_parameterization = true
    scale_v_pred_loss_like_noise_pred = true
    ```
    """

    code, name, severity = "LC225", "noise.v_pred_loss_options_conflict", "error"
    groups = ("noise",)
    summary = "scale_v_pred_loss_like_noise_pred without v_parameterization, or v_pred_like_loss with it."
    message = "{opt} {what}: sd-scripts raises ValueError"
    reference = ("sd-scripts library/custom_train_functions.py add_custom_train_arguments, library/train_util.py "
                 "verify_training_args")

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        vp = truthy(cfg.get("v_parameterization"))
        if truthy(cfg.get("scale_v_pred_loss_like_noise_pred")) and not vp:
            yield self.finding(cfg, option="scale_v_pred_loss_like_noise_pred",
                               opt="scale_v_pred_loss_like_noise_pred", what="requires v_parameterization")
        if (as_number(cfg.get("v_pred_like_loss")) or 0) and vp:
            yield self.finding(cfg, option="v_pred_like_loss", opt="v_pred_like_loss",
                               what="cannot be used with v_parameterization")
