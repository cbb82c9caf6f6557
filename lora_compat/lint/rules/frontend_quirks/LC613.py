"""LC613 locon-flag-not-migrated: Old kohya_ss locon: true is not migrated (loads as Standard LoRA)."""

from __future__ import annotations

from collections.abc import Iterable

from lora_compat.config.model import CanonicalConfig
from lora_compat.lint.finding import Finding
from lora_compat.lint.query import raw_value
from lora_compat.lint.registry import register
from lora_compat.lint.rule_kinds import QuirkRule


@register
class LoconFlagNotMigrated(QuirkRule):
    """The early kohya_ss ``locon: true`` flag (2023-02) loads as a Standard LoRA.

    ``locon`` + ``conv_dim`` existed from 2023-02-28 to 03-02 and were replaced by ``LoRA_type: "LoCon"``; the loader
    never migrates the flag, so the conv layers are dropped.

    **Anti-pattern**

    ```json
    {"max_resolution": "512,512", "network_dim": 32, "locon": true, "conv_dim": 8}
    ```

    **Best practice**

    ```json
    {"max_resolution": "512,512", "network_dim": 32, "LoRA_type": "Kohya LoCon", "conv_dim": 8}
    ```
    """

    code, name, severity = "LC613", "frontend_quirks.locon_flag_not_migrated", "warning"
    groups = ("frontend_quirks", "network")
    summary = "Old kohya_ss locon: true is not migrated (loads as Standard LoRA)."
    message = "{detail}"
    reference = "kohya_ss kohya_gui/lora_gui.py"
    note_codes = ("kohya-gui-locon-bool-ignored",)

    def detect(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        if cfg.dialect != "kohya-gui":
            return
        r = raw_value(cfg, None, keys=("locon",))
        if r and r.value is True:
            yield self.finding(cfg, origin=r.origin,
                               detail="locon: true is never migrated by the kohya_ss loader: the file trains a "
                                      "Standard LoRA without conv layers")
