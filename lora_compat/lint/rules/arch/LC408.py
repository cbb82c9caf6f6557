"""LC408 text-encoder-lr-second-value-ignored: text_encoder_lr with several different values: only the first is used."""

from __future__ import annotations

from collections.abc import Iterable

from lora_compat.config.model import CanonicalConfig
from lora_compat.lint.finding import Finding
from lora_compat.lint.query import as_number
from lora_compat.lint.registry import Rule, register


@register
class TextEncoderLrSecondValueIgnored(Rule):
    """Only the first ``text_encoder_lr`` value is used; SDXL's two text encoders share it.

    For networks.lora (and dylora, lora_fa, oft) sd-scripts reads ``text_encoder_lr[0]`` for every text encoder. The
    docs' ``--text_encoder_lr1/2`` do not exist. A second, different value is silently ignored. (FLUX's
    ``networks.lora_flux`` is different: it reads ``[CLIP-L, T5-XXL]``,
    ``LoRANetwork.prepare_optimizer_params_with_multiple_te_lrs``, so two values are meant there.)

    **Anti-pattern**

    ```toml
    text_encoder_lr = [1e-5, 5e-6]
    ```

    **Best practice**

    ```toml
    text_encoder_lr = 1e-5
    ```
    """

    code, name, severity = "LC408", "arch.text_encoder_lr_second_value_ignored", "warning"
    groups = ("arch", "training", "sdxl")
    summary = "text_encoder_lr with several different values: only the first is used."
    message = "text_encoder_lr = {v!r}: only the first value ({first:g}) is used, for every text encoder"
    quiet_notes = ("text-encoder-lr-list",)   # reported by the check only when the values differ
    reference = "sd-scripts train_network.py setup_parser"

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        from lora_compat.lint.facts import flux

        if flux.uses_lora_flux(cfg):
            return   # networks.lora_flux: one rate per text encoder, [CLIP-L, T5-XXL]
        v = cfg.get("text_encoder_lr")
        if isinstance(v, (list, tuple)) and len(v) > 1:
            nums = [as_number(x) for x in v]
            if len({n for n in nums if n is not None}) > 1 and nums[0] is not None:
                yield self.finding(cfg, option="text_encoder_lr", v=list(v), first=nums[0])
