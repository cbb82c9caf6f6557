"""LC250 accelerate-mixed-precision-ignored: accelerate launch --mixed_precision does not reach sd-scripts."""

from __future__ import annotations

from lora_compat.lint.registry import register
from lora_compat.lint.rule_kinds import NoteRule


@register
class AccelerateMixedPrecisionIgnored(NoteRule):
    """``accelerate launch --mixed_precision`` does not set sd-scripts' precision.

    sd-scripts builds its own ``Accelerator(mixed_precision=args.mixed_precision)``
    (``train_util.prepare_accelerator``), and the Accelerator's argument wins over the launcher's environment. A
    precision given only to ``accelerate launch`` is therefore ignored: without the script's own
    ``--mixed_precision`` the run is full fp32 (sd-scripts' default ``no``), slower and larger than intended.
    When the script sets ``--mixed_precision`` too, the launcher's value is harmless and nothing is reported.

    **Anti-pattern**

    ```bash
    accelerate launch --mixed_precision fp16 train_network.py --network_module networks.lora
    ```

    **Best practice**

    ```bash
    accelerate launch train_network.py --network_module networks.lora --mixed_precision fp16
    ```
    """

    code, name, severity = "LC250", "precision.accelerate_mixed_precision_ignored", "warning"
    groups = ("precision",)
    aliases = ("LC605", "frontend-quirk")
    summary = "accelerate launch --mixed_precision without the script's own --mixed_precision: fp32 training."
    reference = "sd-scripts library/train_util.py prepare_accelerator; docs/cli.md (show)"
    note_codes = ("accelerate-mixed-precision",)
