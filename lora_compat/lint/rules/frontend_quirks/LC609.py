"""LC609 conv-dim-ignored-standard: kohya_ss LoRA_type Standard with conv_dim/conv_alpha: ignored."""

from __future__ import annotations

from collections.abc import Iterable

from lora_compat.config.model import CanonicalConfig
from lora_compat.lint.finding import Finding
from lora_compat.lint.query import as_number, kv_items, raw_value
from lora_compat.lint.registry import register
from lora_compat.lint.rule_kinds import QuirkRule


@register
class ConvDimIgnoredStandard(QuirkRule):
    """kohya_ss ``LoRA_type: "Standard"`` ignores ``conv_dim`` / ``conv_alpha``.

    The GUI emits ``conv_dim``/``conv_alpha`` only for the LoCon/LyCORIS/DyLoRA types; with Standard no 3×3 convolution
    is trained whatever the fields say.

    **Anti-pattern**

    ```json
    {"LoRA_type": "Standard", "conv_dim": 8, "conv_alpha": 4}
    ```

    **Best practice**

    ```json
    {"LoRA_type": "Kohya LoCon", "conv_dim": 8, "conv_alpha": 4}
    ```
    """

    code, name, severity = "LC609", "frontend_quirks.conv_dim_ignored_standard", "warning"
    groups = ("frontend_quirks", "network")
    summary = "kohya_ss LoRA_type Standard with conv_dim/conv_alpha: ignored."
    message = "{detail}"
    reference = "kohya_ss kohya_gui/lora_gui.py"
    note_codes = ("kohya-gui-conv-ignored",)

    def detect(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        t = raw_value(cfg, None, keys=("LoRA_type",))
        if t is None or t.value != "Standard":
            return
        for key in ("conv_dim", "conv_alpha"):
            r = raw_value(cfg, None, keys=(key,))
            n = as_number(r.value) if r else None
            if r and n is not None and n > 1 and not any(k == key for k, _ in kv_items(cfg.get("network_args"))):
                yield self.finding(cfg, origin=r.origin,
                                   detail=f"{key} = {r.value} is ignored: LoRA_type 'Standard' trains no conv layers")
