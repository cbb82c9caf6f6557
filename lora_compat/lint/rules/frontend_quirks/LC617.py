"""LC617 key-ignored-by-frontend: the front-end's loader ignores a key this file sets."""

from __future__ import annotations

from lora_compat.lint.registry import register
from lora_compat.lint.rule_kinds import NoteRule


@register
class KeyIgnoredByFrontend(NoteRule):
    """The front-end ignores a key this file sets, so the value never reached sd-scripts.

    The kohya_ss GUI loads a preset into its form fields (``kohya_gui/common_gui.py``): a key that is no GUI
    field, a stale key superseded by a newer one in the same file (``use_8bit_adam`` once ``optimizer`` exists,
    ``conv_dim``-era block keys), a LoRA+ ratio written as a top-level key that sd-scripts only reads from
    ``network_args``, or a ``save_model_as`` the LoRA tab replaces by ``safetensors`` — none of these changes
    what runs. Derrian's loaders likewise skip keys of another generation, and Derrian A1 ignores ``use_lion``
    next to ``use_8bit_adam``. Delete the key, or move the value where the front-end reads it.

    **Anti-pattern**

    ```json
    {"LoRA_type": "Standard", "optimizer": "AdamW", "use_8bit_adam": true}
    ```

    **Best practice**

    ```json
    {"LoRA_type": "Standard", "optimizer": "AdamW8bit"}
    ```
    """

    code, name, severity = "LC617", "frontend_quirks.key_ignored_by_frontend", "warning"
    groups = ("frontend_quirks",)
    aliases = ("LC605", "frontend-quirk")
    summary = "The kohya_ss GUI or Derrian's loader ignores a key this file sets: it had no effect."
    reference = "kohya_ss kohya_gui/common_gui.py, kohya_gui/lora_gui.py train_model; docs/cli.md (migrate)"
    note_codes = ("kohya-gui-key-ignored", "derrian-key-ignored", "kohya-gui-loraplus-ignored",
                  "derrian-a1-lion-ignored", "kohya-gui-save-model-as-forced")
