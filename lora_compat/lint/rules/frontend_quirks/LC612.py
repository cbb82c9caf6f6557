"""LC612 stop-text-encoder-training-ignored: stop_text_encoder_training is ignored for LoRA training."""

from __future__ import annotations

from collections.abc import Iterable

from lora_compat.config.model import CanonicalConfig
from lora_compat.lint.finding import Finding
from lora_compat.lint.query import as_number, raw_value
from lora_compat.lint.registry import register
from lora_compat.lint.rule_kinds import QuirkRule


@register
class StopTextEncoderTrainingIgnored(QuirkRule):
    """``stop_text_encoder_training`` does nothing for LoRA.

    In the kohya_ss GUI it is a DreamBooth option (percent of steps); the LoRA tab ignores it ("not yet supported",
    since 2023-01-20).

    **Anti-pattern**

    ```json
    {"LoRA_type": "Standard", "stop_text_encoder_training": 50}
    ```

    **Best practice**

    ```json
    {"LoRA_type": "Standard", "stop_text_encoder_training": 0}
    ```
    """

    code, name, severity = "LC612", "frontend_quirks.stop_text_encoder_training_ignored", "warning"
    groups = ("frontend_quirks", "training")
    summary = "stop_text_encoder_training is ignored for LoRA training."
    message = "{detail}"
    reference = "kohya_ss kohya_gui/lora_gui.py"
    note_codes = ("kohya-gui-stop-te-ignored",)

    def detect(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        if cfg.tab not in (None, "lora"):
            return
        r = raw_value(cfg, None, keys=("stop_text_encoder_training", "stop_text_encoder_training_pct"))
        n = as_number(r.value) if r else None
        if r and n and n > 0:
            key = r.origin.key if r.origin else "stop_text_encoder_training"
            yield self.finding(cfg, origin=r.origin, detail=f"{key} = {r.value} is ignored for LoRA training")
