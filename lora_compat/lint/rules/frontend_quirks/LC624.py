"""LC624 frontend-refuses-to-start: the front-end refuses to start training with these settings."""

from __future__ import annotations

from lora_compat.lint.registry import register
from lora_compat.lint.rule_kinds import NoteRule


@register
class FrontendRefusesToStart(NoteRule):
    """The front-end refuses to start training with these settings.

    The kohya_ss GUI checks a few things before it builds the command line (kohya_gui/lora_gui.py
    ``train_model``): ``t5xxl_lr`` set while ``text_encoder_lr`` is 0 stops it (the T5 rate needs the
    text-encoder group), and since 2024-04-20 an ``optimizer_args`` / ``lr_scheduler_args`` field that is not
    ``key=value key=value`` — for instance one that starts with ``--optimizer_args`` — fails
    ``validate_args_setting`` (kohya_gui/common_gui.py). Fix the field; lora-compat reads the arguments the
    way the field meant them.

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
    reference = "kohya_ss kohya_gui/lora_gui.py train_model, kohya_gui/common_gui.py validate_args_setting"
    note_codes = ("kohya-gui-args-refused", "kohya-gui-t5xxl-lr-needs-te")
