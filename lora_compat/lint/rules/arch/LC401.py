"""LC401 clip-skip-on-sdxl: clip_skip on SDXL is ignored (but recorded in ss_clip_skip)."""

from __future__ import annotations

from collections.abc import Iterable

from lora_compat.config.model import CanonicalConfig
from lora_compat.lint.finding import Finding, Fix
from lora_compat.lint.query import as_number
from lora_compat.lint.registry import Rule, register


@register
class ClipSkipOnSdxl(Rule):
    """``clip_skip`` has no effect on SDXL.

    sdxl_train_network.py always uses TE1 layer 11 and TE2's penultimate layer; it warns "clip_skip will be unexpected"
    and ignores the value, which is still written to ``ss_clip_skip``. Remove it so the metadata does not claim a
    setting that was not used.

    Seen in the wild: derrian-distro/LoRA_Easy_Training_Scripts#239, Akegarasu/lora-scripts#341.

    **Anti-pattern**

    ```toml
    # sdxl_train_network.py
    clip_skip = 2
    ```

    **Best practice**

    ```toml
    # no clip_skip for SDXL
    ```
    """

    code, name, severity = "LC401", "arch.clip_skip_on_sdxl", "warning"
    groups = ("arch", "sdxl")
    summary = "clip_skip on SDXL is ignored (but recorded in ss_clip_skip)."
    message = "clip_skip = {v} has no effect on SDXL (sd-scripts ignores it, but records it in the metadata)"
    reference = ("sd-scripts library/train_util.py add_training_arguments, library/strategy_sd.py "
                 "SdTextEncodingStrategy.encode_tokens")
    fixable = True

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        v = cfg.get("clip_skip")
        # 1 is the same as unset for SD, so only a real skip (>= 2) expresses an intent
        if not cfg.is_sdxl or v is None or (as_number(v) or 0) < 2:
            return
        o = cfg.locate("clip_skip")
        fix = None
        if o is not None and cfg.dialect in ("sd-scripts-toml", "native", "derrian-toml"):
            fix = Fix("remove clip_skip", o.file, o.key, action="delete", line=o.line)
        yield self.finding(cfg, option="clip_skip", fix=fix, v=v)
