"""LC620 setting-changed-by-frontend: the front-end changed a setting so that it does something else."""

from __future__ import annotations

from lora_compat.lint.registry import register
from lora_compat.lint.rule_kinds import NoteRule


@register
class SettingChangedByFrontend(NoteRule):
    """The front-end changed a setting on its way to sd-scripts, so the run differs from what the file says.

    Cases the readers reproduce: kohya_ss GUIs of 2023-05-07 to 2024-02-02 dropped the warmup with the
    ``constant`` scheduler; ``train_inpainting`` switches latent caching off; with a ``dataset_config`` and
    ``max_train_steps`` 0 the GUI passes no length (sd-scripts trains 1600 steps, a percent warmup becomes 0);
    Derrian loaders of early February 2023 truncated ``warmup_lr_ratio`` to an int (0.05 -> 0); the string
    ``"none"`` in Derrian's ``xformers`` field is truthy; the Derrian UI switches ``random_crop``/``color_aug``
    off with ``cache_latents``, and its U2 backend mangles strings holding quotes or backslashes. Check that the
    behaviour the note describes is what you want, and set it explicitly.

    **Anti-pattern**

    ```json
    {"LoRA_type": "Standard", "lr_scheduler": "constant", "lr_warmup": 10}
    ```

    **Best practice**

    ```json
    {"LoRA_type": "Standard", "lr_scheduler": "constant_with_warmup", "lr_warmup": 10}
    ```
    """

    code, name, severity = "LC620", "frontend_quirks.setting_changed_by_frontend", "warning"
    groups = ("frontend_quirks",)
    aliases = ("LC605", "frontend-quirk")
    summary = "The front-end changed a setting on its way to sd-scripts: the run differs from the file."
    reference = "kohya_ss kohya_gui/lora_gui.py train_model; docs/cli.md (migrate)"
    note_codes = ("kohya-gui-warmup-dropped-constant", "kohya-gui-warmup-dropped-dataset-config",
                  "kohya-gui-inpainting-no-cache", "kohya-gui-dataset-config-no-steps",
                  "derrian-a1-warmup-ratio-truncated",
                  "derrian-xformers-string-truthy", "derrian-toml-cache-latents-disables-aug",
                  "derrian-toml-u2-quoting", "kohya-gui-chroma-t5-mask")
