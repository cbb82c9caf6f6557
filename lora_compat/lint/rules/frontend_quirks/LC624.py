"""LC624 frontend-refuses-to-start: the front-end refuses to start training with these settings."""

from __future__ import annotations

from lora_compat.lint.registry import register
from lora_compat.lint.rule_kinds import NoteRule


@register
class FrontendRefusesToStart(NoteRule):
    """The front-end refuses to start training with these settings.

    The kohya_ss GUI checks a few combinations before it builds the command line: ``t5xxl_lr`` set while
    ``text_encoder_lr`` is 0 stops it (the T5 rate needs the text-encoder group). Fix the combination; the same
    file run through sd-scripts directly would train something you did not ask for.

    **Anti-pattern**

    ```json
    {"LoRA_type": "Standard", "t5xxl_lr": 0.0001, "text_encoder_lr": 0}
    ```

    **Best practice**

    ```json
    {"LoRA_type": "Standard", "t5xxl_lr": 0.0001, "text_encoder_lr": 0.00005}
    ```
    """

    code, name, severity = "LC624", "frontend_quirks.frontend_refuses_to_start", "error"
    groups = ("frontend_quirks",)
    aliases = ("LC605", "frontend-quirk")
    summary = "The front-end refuses to start training with this combination of settings."
    reference = "kohya_ss kohya_gui/lora_gui.py train_model"
    note_codes = ("kohya-gui-t5xxl-lr-needs-te",)
