"""LC250 accelerate-mixed-precision-ignored: accelerate launch --mixed_precision does not reach sd-scripts."""

from __future__ import annotations

from collections.abc import Iterable

from lora_compat.config.model import CanonicalConfig
from lora_compat.lint.finding import Finding
from lora_compat.lint.query import is_explicit
from lora_compat.lint.registry import Rule, register


@register
class AccelerateMixedPrecisionIgnored(Rule):
    """``accelerate launch --mixed_precision`` does not set sd-scripts' precision.

    sd-scripts builds its own ``Accelerator(mixed_precision=args.mixed_precision)``
    (library/train_util.py ``prepare_accelerator``), and an explicit argument wins over the launcher's
    environment. A precision given only to ``accelerate launch`` is therefore ignored: without the script's own
    ``--mixed_precision`` the run is full fp32 (sd-scripts' default ``no``), slower and larger than intended.
    When the script sets ``--mixed_precision`` too, the launcher's value is harmless and nothing is reported.

    **Anti-pattern**

    ```bash
    accelerate launch --mixed_precision fp16 train_network.py --network_module networks.lora
    ```

    **Best practice**

    ```bash
    accelerate launch --mixed_precision fp16 train_network.py --network_module networks.lora --mixed_precision fp16
    ```
    """

    code, name, severity = "LC250", "precision.accelerate_mixed_precision_ignored", "warning"
    groups = ("precision",)
    aliases = ("LC605", "frontend-quirk")
    summary = "accelerate launch --mixed_precision without the script's own --mixed_precision: fp32 training."
    message = "{detail} [{note}]"
    reference = "sd-scripts library/train_util.py prepare_accelerator; docs/cli.md (show)"
    quiet_notes = ("accelerate-mixed-precision",)   # reported by check(): only when the script does not set it

    def check(self, cfg: CanonicalConfig) -> Iterable[Finding]:
        if is_explicit(cfg, "mixed_precision"):
            return          # the script's own --mixed_precision is what sd-scripts uses
        for n in cfg.notes:
            if n.code in self.quiet_notes:
                yield self.note_finding(cfg, n)
