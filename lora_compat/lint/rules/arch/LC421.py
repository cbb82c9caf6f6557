"""LC421 flow-matching-huber-snr: huber/smooth_l1 loss with huber_schedule snr on a flow-matching model: crash."""

from __future__ import annotations

from collections.abc import Iterable

from lora_compat.config.model import CanonicalConfig
from lora_compat.lint.facts import flux
from lora_compat.lint.finding import Finding
from lora_compat.lint.query import effective
from lora_compat.lint.registry import Rule, register


@register
class FlowMatchingHuberSnr(Rule):
    """``loss_type`` huber or smooth_l1 with ``huber_schedule = "snr"`` (the default) stops a FLUX run.

    ``train_util.get_huber_threshold_if_needed`` computes the ``snr`` schedule from the noise scheduler's
    ``alphas_cumprod``; FLUX.1's ``FlowMatchEulerDiscreteScheduler`` has none, so the first step raises
    ``NotImplementedError: Huber schedule 'snr' is not supported with the current model.``. ``snr`` is the
    default since 2024-04, so choosing ``loss_type = "huber"`` alone is enough to crash. Use
    ``huber_schedule = "constant"`` or ``"exponential"``.

    **Anti-pattern**

    ```toml
    network_module = "networks.lora_flux"
    loss_type = "huber"
    ```

    **Best practice**

    ```toml
    network_module = "networks.lora_flux"
    loss_type = "huber"
    huber_schedule = "constant"
    ```
    """

    code, name, severity = "LC421", "arch.flow_matching_huber_snr", "error"
    groups = ("arch", "flux")
    summary = "FLUX with loss_type huber/smooth_l1 and huber_schedule snr (the default): NotImplementedError."
    message = ("loss_type {loss!r} with huber_schedule 'snr' ({how}): FLUX's flow-matching scheduler has no "
               "alphas_cumprod, so sd-scripts raises NotImplementedError on the first step; use constant or "
               "exponential")
    reference = "sd-scripts library/train_util.py get_huber_threshold_if_needed"

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        if not flux.is_flux(cfg):
            return
        loss = effective(cfg, "loss_type")
        if loss not in ("huber", "smooth_l1") or effective(cfg, "huber_schedule") != "snr":
            return
        how = "set in the file" if cfg.is_set("huber_schedule") else "the default"
        opt = "huber_schedule" if cfg.is_set("huber_schedule") else "loss_type"
        yield self.finding(cfg, option=opt, loss=loss, how=how)
