"""LC622 value-derived-by-frontend: the front-end passed a value this file does not literally say."""

from __future__ import annotations

from lora_compat.lint.registry import register
from lora_compat.lint.rule_kinds import NoteRule


@register
class ValueDerivedByFrontend(NoteRule):
    """The front-end passed a value this file does not literally say; the note says which and why.

    The kohya_ss GUI writes ``sample_prompts`` text to ``<output_dir>/sample/prompt.txt`` and passes that path,
    uses ``output_name`` as the W&B run name, passes ``text_encoder_lr`` as a two-element list, turns a zero
    learning rate into ``network_train_unet_only``/``network_train_text_encoder_only``, splits args strings on
    spaces (a field that starts with its own ``--optimizer_args`` flag passed the flag twice, and argparse kept
    the second list) and appends ``additional_parameters`` (which override its own values); a partial preset takes the
    GUI's defaults for every absent field. Derrian's scripts add ``decouple=True`` for DAdaptation, pass 999999
    for an empty ``save_every_n_epochs``, pick ``network_module`` from the network args, replace
    ``${replace}`` by ``easy_name``, force ``mixed_precision`` with ``full_fp16``/``full_bf16`` and load kohya
    keys through an alias table. lora-compat reproduces each one so that lint, plan and migrate see what ran.

    **Anti-pattern**

    ```json
    {"LoRA_type": "Standard", "sample_prompts": "a photo of sks", "sample_every_n_epochs": 1}
    ```

    **Best practice**

    ```json
    {"LoRA_type": "Standard", "sample_prompts": "prompts/sample.txt", "sample_every_n_epochs": 1}
    ```
    """

    code, name, severity = "LC622", "frontend_quirks.value_derived_by_frontend", "info"
    groups = ("frontend_quirks",)
    aliases = ("LC605", "frontend-quirk")
    summary = "The front-end passed a value the file does not literally say (derived, defaulted or appended)."
    reference = "kohya_ss kohya_gui/lora_gui.py train_model; docs/cli.md (show, migrate)"
    note_codes = ("kohya-gui-partial-preset", "kohya-gui-train-part-from-lr", "kohya-gui-sample-prompts-text",
                  "kohya-gui-wandb-run-name-default", "kohya-gui-t5xxl-lr", "kohya-gui-args-string-split",
                  "kohya-gui-args-flag-repeated", "kohya-gui-additional-parameters", "derrian-a2-decouple-added",
                  "derrian-a1-save-every-default",
                  "derrian-toml-network-module", "derrian-a2-network-module-ignored", "derrian-toml-easy-name",
                  "derrian-toml-precision-forced", "derrian-toml-dim-from-weights-path", "derrian-kohya-alias")
