"""LC618 falsy-value-dropped: the front-end dropped an explicit 0 / false / empty value."""

from __future__ import annotations

from lora_compat.lint.registry import register
from lora_compat.lint.rule_kinds import NoteRule


@register
class FalsyValueDropped(NoteRule):
    """The front-end dropped an explicit zero, ``false`` or empty value: sd-scripts used its own default.

    The kohya_ss GUI writes an option only when its field is truthy, and Derrian's scripts drop every falsy
    value before building the command line. Where sd-scripts' default is not zero, "0" in the file silently
    becomes that default: ``network_alpha 0`` trains with alpha 1, ``prior_loss_weight 0`` with 1.0. To really
    get the value, use a tiny non-zero number where that means the same, or train from a migrated config
    (``lora-compat migrate``), which writes what ran.

    **Anti-pattern**

    ```json
    {"LoRA_type": "Standard", "network_alpha": 0}
    ```

    **Best practice**

    ```json
    {"LoRA_type": "Standard", "network_alpha": 1}
    ```
    """

    code, name, severity = "LC618", "frontend_quirks.falsy_value_dropped", "info"
    groups = ("frontend_quirks",)
    aliases = ("LC605", "frontend-quirk")
    summary = "An explicit 0/false/empty value was dropped by the front-end: sd-scripts' default was used."
    reference = "kohya_ss kohya_gui/lora_gui.py train_model; docs/cli.md (migrate)"
    note_codes = ("kohya-gui-zero-dropped", "derrian-a2-falsy-dropped", "derrian-toml-falsy-dropped",
                  "derrian-flux-shift-not-passed", "derrian-flux-guidance-zero")
