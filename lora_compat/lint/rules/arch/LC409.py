"""LC409 not-an-sd-lora-config: the file trains something other than an SD1/SD2/SDXL LoRA."""

from __future__ import annotations

from lora_compat.lint.registry import register
from lora_compat.lint.rule_kinds import NoteRule


@register
class NotAnSdLoraConfig(NoteRule):
    """The file trains something else than an SD1 / SD2 / SDXL LoRA (another tab, method or model family).

    The front-ends keep one file format for many jobs: a kohya_ss GUI preset may come from the DreamBooth,
    Finetune or Textual Inversion tab; a Derrian file may train Extended Textual Inversion or FLUX. lora-compat
    reads what it can, names what the file trains and never treats it as an SD1 LoRA: settings that only exist
    for that job are not checked. A model family lora-compat does not support yet (the GUI's ``flux1_checkbox``,
    ``sd3_checkbox`` …) is LC412, which names the family; ``migrate``/``plan``/``train`` refuse it.

    **Anti-pattern**

    ```json
    {"max_resolution": "512,512", "learning_rate_te": 1e-05, "stop_text_encoder_training": 0}
    ```

    **Best practice**

    ```json
    {"LoRA_type": "Standard", "sdxl": true}
    ```
    """

    code, name, severity = "LC409", "arch.not_an_sd_lora_config", "warning"
    groups = ("arch",)
    aliases = ("LC605", "frontend-quirk")
    summary = "The file trains another tab, method or model family than an SD1/SD2/SDXL LoRA."
    reference = "kohya_ss kohya_gui/lora_gui.py train_model; docs/cli.md (show: family)"
    note_codes = ("kohya-gui-not-lora-tab", "derrian-xti-not-lora", "derrian-toml-not-lora")
