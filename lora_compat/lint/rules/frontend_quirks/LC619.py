"""LC619 option-passed-only-under-condition: the front-end passes this option only under a condition not met."""

from __future__ import annotations

from lora_compat.lint.registry import register
from lora_compat.lint.rule_kinds import NoteRule


@register
class OptionPassedOnlyUnderCondition(NoteRule):
    """The front-end passes this option only under a condition this file does not meet, so it had no effect.

    Examples: SDXL-only fields of the kohya_ss GUI are ignored without the ``sdxl`` checkbox; only the noise
    settings of the selected ``noise_offset_type`` are passed; GUIs of the command-line era (before 2024-04-14)
    passed ``clip_skip`` only above 1 and ``max_token_length`` only above 75; Derrian A1 passes
    ``cosine_restarts`` only with ``cosine_with_restarts``, Derrian A2 drops ``betas`` for Adafactor and the UI
    removes ``clip_skip`` for SDXL. The value is harmless, but it does not do what it seems to.

    **Anti-pattern**

    ```json
    {"LoRA_type": "Standard", "sdxl": false, "sdxl_no_half_vae": true}
    ```

    **Best practice**

    ```json
    {"LoRA_type": "Standard", "sdxl": true, "sdxl_no_half_vae": true}
    ```
    """

    code, name, severity = "LC619", "frontend_quirks.option_passed_only_under_condition", "info"
    groups = ("frontend_quirks",)
    aliases = ("LC605", "frontend-quirk")
    summary = "The front-end passes this option only under a condition that is not met: no effect."
    reference = "kohya_ss kohya_gui/lora_gui.py train_model; docs/cli.md (migrate)"
    note_codes = ("derrian-a1-condition-dropped", "kohya-gui-cmdline-era-condition", "kohya-gui-noise-type-inactive",
                  "kohya-gui-sdxl-only-ignored", "derrian-toml-clip-skip-sdxl", "derrian-a2-betas-dropped",
                  "kohya-gui-flux-train-blocks-ignored")
