"""LC621 training-length-from-frontend: the front-end computed steps, warmup or cycles from other fields."""

from __future__ import annotations

from lora_compat.lint.registry import register
from lora_compat.lint.rule_kinds import NoteRule


@register
class TrainingLengthFromFrontend(NoteRule):
    """The front-end computed the run's length, warmup or cycles from other fields; here is how.

    The kohya_ss GUI turns ``epoch`` into ``max_train_steps`` with its own bucket-agnostic formula, a percent
    ``lr_warmup`` into ``lr_warmup_steps``, an empty ``lr_scheduler_num_cycles`` into the epoch count, and lets
    ``max_train_epochs`` or ``lr_warmup_steps`` override its estimate; Derrian's scripts convert
    ``warmup_lr_ratio``/``warmup_ratio`` and (A1 before 2023-02-04) ``num_epochs`` with their own step
    estimate. lora-compat reproduces each formula; the note shows the arithmetic. ``lora-compat plan`` shows the
    resulting schedule, ``migrate`` writes it as plain sd-scripts values.

    **Anti-pattern**

    ```json
    {"LoRA_type": "Standard", "max_train_epochs": 10, "max_train_steps": 1600}
    ```

    **Best practice**

    ```json
    {"LoRA_type": "Standard", "max_train_epochs": 10, "max_train_steps": 0}
    ```
    """

    code, name, severity = "LC621", "frontend_quirks.training_length_from_frontend", "info"
    groups = ("frontend_quirks", "training")
    aliases = ("LC605", "frontend-quirk")
    summary = "The front-end computed steps, warmup or scheduler cycles from other fields (arithmetic shown)."
    reference = "kohya_ss kohya_gui/lora_gui.py train_model; docs/cli.md (plan, migrate)"
    note_codes = ("kohya-gui-epoch-to-steps", "kohya-gui-epoch-as-max-train-epochs", "kohya-gui-max-train-epochs-wins",
                  "kohya-gui-warmup-percent",
                  "kohya-gui-warmup-steps-override", "kohya-gui-lr-scheduler-cycles-epoch",
                  "derrian-a1-epochs-to-steps", "derrian-warmup-ratio", "derrian-toml-warmup-ratio")
