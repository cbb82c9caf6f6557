"""LC249 peft-semantics: A native PEFT field means something other than its kohya counterpart (or is ignored)."""

from __future__ import annotations

from collections.abc import Iterable

from lora_compat.config.model import CanonicalConfig
from lora_compat.lint.finding import Finding
from lora_compat.lint.registry import Rule, register


@register
class PeftSemantics(Rule):
    """A native config uses a PEFT field whose meaning differs from kohya's (or that PEFT will ignore).

    Native configs name the adapter with PEFT's fields, and PEFT's rules apply to them: ``use_rslora`` scales the update
    by ``lora_alpha/sqrt(r)`` instead of sd-scripts' ``alpha/r`` (same alpha, stronger LoRA); ``init_lora_weights``
    other than ``true`` does not start the adapter as sd-scripts does; ``loftq_config`` is only used with
    ``init_lora_weights = "loftq"`` and needs an unquantized base; ``lora_dropout`` is PEFT's input dropout, not kohya's
    ``network_dropout``; DoRA and ``target_modules``/``rank_pattern`` regexes have no sd-scripts equivalent. The message
    says which.

    **Anti-pattern**

    ```toml
    format = "lora-compat/1"
    [network]
    r = 16
    lora_alpha = 16
    use_rslora = true   # expected kohya strength alpha/r = 1; PEFT applies 16/sqrt(16) = 4
    ```

    **Best practice**

    ```toml
    format = "lora-compat/1"
    [network]
    r = 16
    lora_alpha = 16     # plain alpha/r scaling, as in sd-scripts
    ```
    """

    code, name, severity = "LC249", "network.peft_semantics", "warning"
    groups = ("network",)
    summary = "A native PEFT field means something other than its kohya counterpart (or is ignored)."
    message = "{detail}"
    reference = "peft src/peft/tuners/lora/config.py LoraConfig; docs/api.md"
    note_codes = ("native-loftq-needs-init", "native-loftq-quantized-base", "native-rslora-scale",
                  "native-dora-not-kohya", "native-lora-dropout-not-kohya", "native-init-not-kohya",
                  "native-pattern-no-kohya")

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        # What PEFT itself refuses (loftq without loftq_config, ...) is an invalid value: LC101 errors.
        for n in self.claimed_notes(cfg):
            yield self.finding(cfg, origin=n.origin, detail=n.message)
