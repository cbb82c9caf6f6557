"""LC623 launcher-or-ui-setting: a launcher (accelerate) or front-end-only setting, not an sd-scripts option."""

from __future__ import annotations

from lora_compat.lint.registry import register
from lora_compat.lint.rule_kinds import NoteRule


@register
class LauncherOrUiSetting(NoteRule):
    """These keys configure the launcher (``accelerate launch``) or the front-end itself, not sd-scripts.

    ``num_processes``, ``num_machines``, ``num_cpu_threads_per_process``, ``multi_gpu``, ``gpu_ids`` and
    ``dynamo_backend`` go to ``accelerate launch``; Derrian's UI keeps tag files, saved TOML copies and
    ``easy_name`` for itself; a command line started through ``accelerate launch`` or ``python -m`` records the
    launcher's options the same way. They are kept (``show`` lists them as front-end-only keys) but no lint rule
    about sd-scripts applies to them. ``lora-compat train`` runs under ``accelerate launch`` too: pass them
    there.

    **Anti-pattern**

    ```json
    {"LoRA_type": "Standard", "num_processes": 2, "num_machines": 1}
    ```

    **Best practice**

    ```bash
    accelerate launch --num_processes 2 train_network.py --network_module networks.lora --mixed_precision fp16
    ```
    """

    code, name, severity = "LC623", "frontend_quirks.launcher_or_ui_setting", "info"
    groups = ("frontend_quirks",)
    aliases = ("LC605", "frontend-quirk")
    summary = "accelerate launch options or front-end-only settings: kept, not sd-scripts options."
    reference = "kohya_ss kohya_gui/class_accelerate_launch.py; docs/cli.md (show)"
    note_codes = ("kohya-gui-accelerate-options", "command-line-launcher", "several-training-commands",
                  "derrian-toml-ui-only")
